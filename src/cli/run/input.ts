import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/** Counts the inputs read so far; `total` is known once the source has ended. */
export interface InputCount {
  read: number;
  total: number | null;
}

/**
 * The lines of a stream, one chunk read at a time as they are asked for, so a huge or endless
 * stdin is never read further ahead than the jobs that run. A final line without a newline counts.
 */
export async function* readLines(stream: Readable, count: InputCount): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  for await (const chunk of stream) {
    const lines = (carry + decoder.write(chunk as Buffer)).split('\n');
    carry = lines.pop()!;
    for (const line of lines) {
      count.read++;
      yield line;
    }
  }
  carry += decoder.end();
  if (carry !== '') {
    count.read++;
    yield carry;
  }
  count.total = count.read;
}

/** The arguments given after `:::`, as a source that counts like `readLines`. */
export function* listArguments(values: readonly string[], count: InputCount): Generator<string> {
  count.total = values.length;
  for (const value of values) {
    count.read++;
    yield value;
  }
}
