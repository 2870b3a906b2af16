import { describe, expect, it } from 'vitest';
import { DOCKER_CERTS_DIR, dockerTransportOptions } from '../../../src/registry/docker-defaults.js';

describe('Docker client defaults', () => {
  it('reads TLS material from /etc/docker/certs.d and the certs.d beside config.json, under what the caller set', () => {
    const env = { DOCKER_CONFIG: '/home/ci/.docker-alt' };
    expect(dockerTransportOptions({}, env)).toEqual({ certsDir: DOCKER_CERTS_DIR, certsDirs: ['/home/ci/.docker-alt/certs.d'] });
    const mine = dockerTransportOptions({ certsDir: '/srv/certs', certsDirs: ['/opt/extra'], attempts: 2 }, env);
    expect(mine).toEqual({ certsDir: '/srv/certs', certsDirs: ['/opt/extra', '/home/ci/.docker-alt/certs.d'], attempts: 2 });
  });
});
