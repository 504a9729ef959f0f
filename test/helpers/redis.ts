// A throwaway redis-server on a unix socket (no TCP port, nothing saved), for the
// queue tests and the queue benchmark's shape. Stopped with SIGTERM and awaited.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestRedis {
  socket: string;
  /** A queue URL for `name` on this server: redis+unix://SOCKET?queue=NAME */
  url(name: string): string;
  stop(): Promise<void>;
}

/** Resolves once the server answers PING on `socket`; rejects if it exits or takes 10 s. */
async function whenAnswering(socket: string, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (gone) throw new Error('redis-server exited before it was ready');
    const answered = await new Promise<boolean>((resolve) => {
      const client = connect(socket);
      client.on('error', () => resolve(false));
      client.on('data', (data) => {
        resolve(data.toString().startsWith('+PONG'));
        client.destroy();
      });
      client.on('connect', () => client.write('PING\r\n'));
    });
    if (answered) return;
    if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-redis-'));
  const socket = join(dir, 'redis.sock');
  const server: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  server.stdout!.resume();
  try {
    await whenAnswering(socket, exited);
  } catch (error) {
    server.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    socket,
    url: (name) => `redis+unix://${socket}?queue=${name}`,
    async stop() {
      server.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
