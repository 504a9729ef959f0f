// Queue addresses on the command line: where the Redis server is and the queue's name.
//   redis://[USER:PASSWORD@]HOST[:PORT]/NAME[?db=N]
//   redis+unix:///PATH/TO/redis.sock?queue=NAME[&db=N]
import type { RedisOptions } from 'bullmq';

export interface QueueAddress {
  connection: RedisOptions;
  name: string;
}

export class QueueUrlError extends Error {
  readonly code = 'ERR_INVALID_ARG_VALUE';
}

export function parseQueueUrl(text: string): QueueAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new QueueUrlError(`not a queue URL: '${text}'`);
  }
  const db = url.searchParams.get('db');
  const connection: RedisOptions = {};
  if (db !== null) {
    if (!/^\d+$/.test(db)) throw new QueueUrlError(`bad db number in '${text}'`);
    connection.db = Number(db);
  }
  if (url.username) connection.username = decodeURIComponent(url.username);
  if (url.password) connection.password = decodeURIComponent(url.password);
  let name: string;
  if (url.protocol === 'redis:' || url.protocol === 'rediss:') {
    if (!url.hostname) throw new QueueUrlError(`no host in '${text}'`);
    connection.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    connection.port = url.port ? Number(url.port) : 6379;
    if (url.protocol === 'rediss:') connection.tls = {};
    name = decodeURIComponent(url.pathname.slice(1));
  } else if (url.protocol === 'redis+unix:' || url.protocol === 'unix:') {
    if (!url.pathname) throw new QueueUrlError(`no socket path in '${text}'`);
    connection.path = decodeURIComponent(url.pathname);
    name = url.searchParams.get('queue') ?? '';
  } else {
    throw new QueueUrlError(
      `a queue URL starts with redis://, rediss:// or redis+unix://: '${text}'`,
    );
  }
  if (name === '' || name.includes('/') || name.includes(':')) {
    throw new QueueUrlError(`no queue name (or one with / or :) in '${text}'`);
  }
  return { connection, name };
}
