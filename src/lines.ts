// Line iteration over a piped output stream.
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';

/**
 * Yields the lines of `stream` without their terminators (`\n` or `\r\n`), the
 * last one too when it has no newline. Chunks are pulled one at a time through
 * the stream's async iterator, so the pipe is read no faster than the loop
 * consumes: memory stays bounded by the longest line plus one chunk.
 *
 * Leaving the loop early (break, return, throw) destroys the stream: pidwatch's
 * end of the pipe is closed and unread output is discarded. The process is not
 * signalled; if it writes again it gets EPIPE, or dies of SIGPIPE (its default),
 * as a producer does in `cmd | head -1`.
 */
export async function* readLines(stream: Readable): AsyncGenerator<string, void, undefined> {
  // A Readable left paused (readableFlowing false) is one the process will not
  // drain after the exit: its data stays for this loop, however late it starts.
  stream.pause();
  const decoder = new StringDecoder('utf8');
  let pending = '';
  for await (const chunk of stream) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    let newline = text.indexOf('\n');
    while (newline !== -1) {
      const line = pending + text.slice(start, newline);
      pending = '';
      yield line.endsWith('\r') ? line.slice(0, -1) : line;
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    // Only the new text is searched: a long line costs its length once.
    pending += text.slice(start);
  }
  pending += decoder.end();
  if (pending !== '') yield pending;
}
