import type { FastifyInstance } from 'fastify';
import type { CnrStore } from '../store/store.js';

export interface BrowseOptions {
  store: CnrStore;
}

/** The browsable pages (replaced by the full page module). */
export function registerBrowse(app: FastifyInstance, opts: BrowseOptions): void {
  app.get('/', async (_req, reply) => {
    const { entries } = await opts.store.listPackages();
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><title>CNR</title><ul>${entries.map((e) => `<li>${e.name}</li>`).join('')}</ul>`);
  });
}
