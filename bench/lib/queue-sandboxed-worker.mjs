// A BullMQ worker as BullMQ's docs show it for running commands: a sandboxed
// processor (a file, run in a forked Node process per concurrency slot) that runs
// the command with child_process. Prints `ready` once connected; stops on SIGTERM.
//   node queue-sandboxed-worker.mjs SOCKET QUEUE CONCURRENCY
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';

const [socket, name, concurrency] = process.argv.slice(2);
const processorFile = join(
  dirname(fileURLToPath(import.meta.url)),
  'queue-sandboxed-processor.cjs',
);
const worker = new Worker(name, processorFile, {
  connection: { path: socket, maxRetriesPerRequest: null },
  concurrency: Number(concurrency),
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.once('SIGTERM', () => void worker.close().then(() => process.exit(0)));
