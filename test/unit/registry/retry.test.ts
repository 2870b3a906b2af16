import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError } from '../../../src/registry/errors.js';
import { RetryBudget, rereading } from '../../../src/registry/retry.js';
import { Transport } from '../../../src/registry/transport.js';

describe('RetryBudget', () => {
  it('hands out numbered retries up to its limit, then none', () => {
    const budget = new RetryBudget(2);
    expect(budget.next()).toBe(1);
    expect(budget.take()).toBe(1);
    expect(budget.take()).toBe(2);
    expect(budget.next()).toBeUndefined();
    expect(budget.take()).toBeUndefined();
    expect(budget.used).toBe(2);
    expect(new RetryBudget(0).take()).toBeUndefined();
  });

  it('a transport gives each operation attempts - 1 retries', () => {
    expect(new Transport({ attempts: 4 }).budget().limit).toBe(3);
    expect(new Transport({ attempts: 1 }).budget().limit).toBe(0);
  });

  it('re-reads while the budget lasts, and only for failures a new try may cure', async () => {
    const policy = { backoff: () => 0, log: () => {} };
    let tries = 0;
    const failing = () => {
      tries++;
      return Promise.reject(new ConnectionError('cut short'));
    };
    await expect(rereading(policy, new RetryBudget(2), 'x', failing)).rejects.toThrow(/cut short/);
    expect(tries).toBe(3);
    tries = 0;
    const spent = new RetryBudget(2);
    spent.take();
    spent.take();
    await expect(rereading(policy, spent, 'x', failing)).rejects.toThrow(/cut short/);
    expect(tries).toBe(1);
    tries = 0;
    await expect(rereading(policy, new RetryBudget(5), 'x', () => (tries++, Promise.reject(new RangeError('no'))))).rejects.toThrow(/no/);
    expect(tries).toBe(1);
  });
});

describe('transport sends within the budget it is given', () => {
  let server: Server;
  let base: string;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.writeHead(503, { 'content-length': 0 }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('two requests of one operation share its retries; a request on its own has attempts tries', async () => {
    const transport = new Transport({ retryDelay: 1, attempts: 3 });
    const status = async (path: string, budget?: RetryBudget) => {
      const res = await transport.send(`${base}${path}`, { method: 'GET', ...(budget ? { budget } : {}) });
      await res.body.dump();
      return res.statusCode;
    };
    const budget = transport.budget();
    hits = 0;
    expect(await status('/a', budget)).toBe(503);
    expect(hits).toBe(3);
    // The operation's budget is spent: its next request is sent once.
    expect(await status('/b', budget)).toBe(503);
    expect(hits).toBe(4);
    hits = 0;
    expect(await status('/c')).toBe(503);
    expect(hits).toBe(3);
  });
});
