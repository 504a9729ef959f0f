// A throwaway redis-server on a unix socket (no TCP port, nothing saved), for the
// queue tests and the queue benchmark. Stopped with SIGTERM and awaited. Plain
// JavaScript (types in redis.d.mts), so that bench/ can use it too.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Resolves once the server answers PING on `socket`; rejects if it exits or takes 10 s. */
async function whenAnswering(socket, exited) {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (gone) throw new Error('redis-server exited before it was ready');
    const answered = await new Promise((resolve) => {
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

/** Starts redis-server in a fresh temporary directory and waits until it answers. */
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'pidwatch-redis-'));
  const socket = join(dir, 'redis.sock');
  // biome-ignore format: the server's options, in pairs
  const options = [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--save', '',
    '--appendonly', 'no', '--dir', dir, '--maxmemory-policy', 'noeviction',
  ];
  const server = spawn('redis-server', options, { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => server.once('exit', () => resolve()));
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
