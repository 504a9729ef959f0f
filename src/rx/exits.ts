import { Observable, share } from 'rxjs';
import { onAnyExit } from '../exits-hub.js';
import type { ExitStatus } from '../types.js';

/**
 * Hot: every exit pidwatch observes in this thread while subscribed, from spawn() children
 * and watch()ed processes alike. Subscribers share one hub listener.
 */
export const exits$: Observable<ExitStatus> = new Observable<ExitStatus>((subscriber) =>
  onAnyExit((status) => subscriber.next(status)),
).pipe(share());
