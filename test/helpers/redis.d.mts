export interface TestRedis {
  socket: string;
  /** A queue URL for `name` on this server: redis+unix://SOCKET?queue=NAME */
  url(name: string): string;
  stop(): Promise<void>;
}

export function startRedis(): Promise<TestRedis>;
