import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

/**
 * JSON whose object key order matters. JSON.parse moves integer-like keys ("123", "7") to the
 * front of an object, and a namespace, a channel or a media type may well be all digits; the
 * store's order (Python's insertion order) is what the reference lists. So the text is read a
 * second time with `yaml` (JSON is YAML 1.2), keeping each object's keys in source order.
 * JSON.parse stays the judge of validity: where the two disagree, its value and order are used.
 */
export interface OrderedJson {
  value: unknown;
  /** The keys of an object of `value`, in the order the text has them. */
  keys(object: object): string[];
}

/** Throws JSON.parse's SyntaxError for text that is not JSON. */
export function parseOrderedJson(text: string): OrderedJson {
  const plain: unknown = JSON.parse(text);
  const order = new WeakMap<object, string[]>();
  let value = plain;
  try {
    const doc = parseDocument(text, { schema: 'json', uniqueKeys: true });
    if (doc.errors.length === 0) value = convert(doc.contents, order);
  } catch {
    value = plain;
  }
  return { value, keys: (object) => order.get(object) ?? Object.keys(object) };
}

function convert(node: unknown, order: WeakMap<object, string[]>): unknown {
  if (isMap(node)) {
    const object: Record<string, unknown> = {};
    const keys: string[] = [];
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? pair.key.value : undefined;
      if (typeof key !== 'string') throw new Error('non-string key');
      keys.push(key);
      // defineProperty: a key "__proto__" is data here, not the prototype.
      Object.defineProperty(object, key, { value: convert(pair.value, order), enumerable: true, writable: true, configurable: true });
    }
    order.set(object, keys);
    return object;
  }
  if (isSeq(node)) return node.items.map((item) => convert(item, order));
  if (isScalar(node)) return node.value;
  throw new Error('unexpected node');
}
