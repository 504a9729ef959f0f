import { from, type Observable } from 'rxjs';
import { invalid } from '../runner/validate.js';
import type { ExitSource, ExitStatus } from '../types.js';

/** The exit of a Subprocess or WatchedProcess: emits once and completes, also when subscribed late. */
export function exit$(proc: ExitSource): Observable<ExitStatus> {
  if (typeof proc !== 'object' || proc === null || !(proc.exited instanceof Promise)) {
    throw invalid('ERR_INVALID_ARG_TYPE', 'exit$ expects a Subprocess or WatchedProcess');
  }
  return from(proc.exited);
}
