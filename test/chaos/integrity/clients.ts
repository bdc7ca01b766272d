/**
 * The section's view of one chaos client (programs/chaos-client.ts): the process, and what its
 * lines said so far. Lines are read as they arrive; `acks`, `finished`, ... only ever grow.
 */
import type { SectionContext, Spawned } from '../context.js';
import type { ChaosClientSpec as ClientSpec } from '../programs/chaos-client.js';

export type ClientKill = 'SIGKILL' | 'SIGTERM' | 'exit';


export class ChaosClient {
  readonly tag: string;
  readonly child: Spawned;
  /** Runs it opened or attached to, with the pid of the supervisor that served them. */
  readonly opened = new Map<string, { supervisor: number; shared: boolean }>();
  /** `run publisher` → highest seq acknowledged by a sync or a finish. */
  readonly acks = new Map<string, { run: string; publisher: string; seq: number }>();
  /** run → { seq, records } of a finish it saw. */
  readonly finished = new Map<string, { seq: number; records: number; status: string }>();
  readonly finishing = new Set<string>();
  /** Runs that were open when it gave up a connection, with the error code that made it. */
  readonly lost = new Map<string, string>();
  /** Last seq published to each run before it called process.exit, and by which publisher. */
  readonly flushedAtExit: Array<{ run: string; publisher: string; seq: number }> = [];
  /** Why it gave up connections, by error code. */
  readonly lostCodes: string[] = [];
  /** How the section ended it, if it did. */
  killedBy: ClientKill | null = null;
  #buffered = '';

  constructor(ctx: SectionContext, spec: ClientSpec) {
    this.tag = spec.tag;
    this.child = ctx.program('chaos-client', spec, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.process.stdin?.on('error', () => {}); // it may be gone when we write
    this.child.process.stdout?.on('data', (chunk: Buffer) => this.#take(chunk.toString()));
  }

  get pid(): number {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.process.exitCode === null && this.child.process.signalCode === null;
  }

  /** Its own run now open (not finished, not lost), if any. */
  get ownRun(): string | null {
    let last: string | null = null;
    for (const [run, o] of this.opened) if (!o.shared && !this.finished.has(run) && !this.lost.has(run)) last = run;
    return last;
  }

  command(word: 'exit' | 'finish'): void {
    this.child.process.stdin?.write(`${word}\n`);
  }

  /** Waits for the process to end; resolves false when it is still running after `ms`. */
  async ended(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([this.child.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
    clearTimeout(timer);
    // 'exit' may come before the last of stdout: read on until it ends.
    if (ok && this.child.process.stdout && !this.child.process.stdout.readableEnded) {
      await new Promise((r) => {
        const t = setTimeout(r, 2_000);
        this.child.process.stdout?.once('end', () => (clearTimeout(t), r(null)));
      });
    }
    return ok;
  }

  #ack(run: string, publisher: string, seq: number): void {
    const key = `${run} ${publisher}`;
    this.acks.set(key, { run, publisher, seq: Math.max(seq, this.acks.get(key)?.seq ?? -1) });
  }

  #take(text: string): void {
    this.#buffered += text;
    let nl: number;
    while ((nl = this.#buffered.indexOf('\n')) >= 0) {
      const line = this.#buffered.slice(0, nl);
      this.#buffered = this.#buffered.slice(nl + 1);
      let l: Record<string, unknown>;
      try {
        l = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const run = String(l.run);
      switch (l.e) {
        case 'opened':
          this.opened.set(run, { supervisor: Number(l.supervisor), shared: l.shared === true });
          break;
        case 'ack':
          this.#ack(run, String(l.p), Number(l.seq));
          break;
        case 'finishing':
          this.finishing.add(run);
          break;
        case 'finished':
          this.finished.set(run, { seq: Number(l.seq), records: Number(l.records), status: String(l.status) });
          this.#ack(run, String(l.p), Number(l.seq));
          break;
        case 'lost':
          for (const r of l.runs as string[]) this.lost.set(r, String(l.code));
          this.lostCodes.push(String(l.code));
          break;
        case 'exiting':
          for (const [r, seq] of Object.entries(l.last as Record<string, number>)) this.flushedAtExit.push({ run: r, publisher: String(l.p), seq });
          break;
      }
    }
  }
}
