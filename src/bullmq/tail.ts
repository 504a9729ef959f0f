// The last `limit` bytes of a stream, and its line count, in bounded memory.
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

export class Tail {
  #chunks: Buffer[] = [];
  #size = 0;
  #limit: number;
  lines = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  push(chunk: Buffer): void {
    for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) this.lines++;
    if (this.#limit === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size - this.#chunks[0]!.length >= this.#limit) {
      this.#size -= this.#chunks.shift()!.length;
    }
  }

  /** The tail's bytes, exactly the last `limit`. */
  bytes(): Buffer {
    const bytes = Buffer.concat(this.#chunks, this.#size);
    return bytes.subarray(Math.max(0, bytes.length - this.#limit));
  }

  /** The tail as text; a character cut at its start is dropped. */
  text(): string {
    const bytes = Buffer.concat(this.#chunks, this.#size);
    let start = Math.max(0, bytes.length - this.#limit);
    while (start < bytes.length && start > 0 && (bytes[start]! & 0xc0) === 0x80) start++;
    return bytes.subarray(start).toString('utf8');
  }
}

/** Calls `onLine` with each line of `stream` (without its terminator), a final partial one too. */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const take = (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  };
  stream.on('data', (chunk: Buffer) => take(decoder.write(chunk)));
  stream.on('end', () => {
    take(decoder.end());
    if (partial !== '') onLine(partial);
    partial = '';
  });
}
