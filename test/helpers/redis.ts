/**
 * A real Redis server for the queue's tests: the one `XBAR_TEST_REDIS` names (.ci/run starts one
 * and exports it), else Debian's `redis-server` started here on a free port, without persistence,
 * and stopped after. Neither: null, and the tests skip saying why.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export interface TestRedis {
  url: string;
  stop(): Promise<void>;
}

export const NO_REDIS =
  'no Redis server: set XBAR_TEST_REDIS=redis://HOST:PORT or install redis-server (apt-get install redis-server)';

/** A TCP port free at the moment. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const c = createConnection({ port, host: '127.0.0.1' });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });

export async function startRedis(): Promise<TestRedis | null> {
  const given = process.env['XBAR_TEST_REDIS'];
  if (given) return { url: given, stop: async () => {} };
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const server: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (server.exitCode !== null) return resolve();
        server.once('exit', () => resolve());
        server.kill('SIGTERM');
      }),
  };
}
