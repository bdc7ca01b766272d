/**
 * Which connections the supervisor takes. Beyond the cap of fd-budget.ts, a connection gets one
 * fatal ERROR frame (id 0, MUXVISOR_OVERLOADED, with the numbers) before anything else, and is
 * closed; its HELLO is never read. Refusals and failed accepts (EMFILE: descriptors ran out all
 * the same) are counted, and logged at most once per REPORT_EVERY_MS with how many there were, so
 * that a client retrying in a loop cannot flood the supervisor log.
 *
 * Contract: `admit` is called once per accepted socket; when it returns false the socket belongs
 * to this class, which closes it within LINGER_MS whatever the peer does.
 */
import type { Socket } from 'node:net';
import { encodeMessage, Kind, type MuxvisorError } from '../protocol/index.js';
import { type ConnectionBudget, connectionBudget, openFileCount, tooManyConnections } from './fd-budget.js';
import type { Logger } from './log.js';
import { ReportThrottle } from './report-throttle.js';

/** At most one log line per this many ms for refusals, and one for failed accepts. */
export const REPORT_EVERY_MS = 10_000;
/** A refused socket waits this long for its peer to close first (a clean close), then is destroyed. */
const LINGER_MS = 1_000;
/** Refused sockets left to linger at once; beyond this they are destroyed as soon as told. */
const MAX_LINGERING = 16;

export class Admission {
  readonly budget: ConnectionBudget;
  /** Connections refused since start. */
  refused = 0;
  /** Accepts that failed since start (the listener's 'error', EMFILE and the like). */
  acceptErrors = 0;
  readonly #log: Logger;
  readonly #lingering = new Set<Socket>();
  readonly #refusals = new ReportThrottle(REPORT_EVERY_MS);
  readonly #errors = new ReportThrottle(REPORT_EVERY_MS);

  /** Call when the supervisor starts listening: the descriptors open then are the baseline. */
  constructor(log: Logger, budget: ConnectionBudget = connectionBudget()) {
    this.budget = budget;
    this.#log = log;
  }

  /** True when a new connection may join the `open` ones; otherwise it has been refused. */
  admit(socket: Socket, open: number): boolean {
    const max = this.budget.maxConnections;
    if (max === null || open < max) return true;
    this.#refuse(socket, tooManyConnections(open, this.budget));
    return false;
  }

  /** The listener reported an error (accept failed): count it, log it sparingly. */
  acceptFailed(error: NodeJS.ErrnoException): void {
    this.acceptErrors++;
    const n = this.#errors.hit();
    if (n === 0) return;
    this.#log.error({ err: error.message, code: error.code, since: n, total: this.acceptErrors, openFiles: openFileCount(), fileLimit: this.budget.fileLimit }, 'cannot accept connections');
  }

  #refuse(socket: Socket, error: MuxvisorError): void {
    this.refused++;
    socket.on('error', () => undefined);
    socket.on('data', () => undefined); // the HELLO, unread: the peer reads our answer, not a reset
    // A new socket's send buffer is empty: the frame reaches the kernel in this call.
    socket.end(encodeMessage({ kind: Kind.Error, id: 0, error: error.toWire(), fatal: true }));
    if (this.#lingering.size >= MAX_LINGERING) {
      socket.destroy();
    } else {
      this.#lingering.add(socket);
      const timer = setTimeout(() => socket.destroy(), LINGER_MS);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        this.#lingering.delete(socket);
      });
    }
    const n = this.#refusals.hit();
    if (n > 0) this.#log.warn({ err: error.message, since: n, total: this.refused }, 'refused connections over the cap');
  }
}
