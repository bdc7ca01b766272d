/**
 * The monitor's hold on the terminal: the alternate screen, a hidden cursor, raw keys, and
 * frames written whole.
 *
 * Contracts: `open()` takes the terminal and `restore()` gives it back (main screen, cursor
 * shown, raw mode off, stdin paused, listeners removed). `restore()` is idempotent, synchronous
 * (a terminal's writes are, in Node on Unix) and never throws, so it is safe on every way out:
 * a key, a signal, an uncaught error, the process's 'exit'. Each `draw()` is one write (cursor
 * home, each line then erase-to-end-of-line, then erase-down), so the terminal never shows a
 * half-drawn frame and nothing blinks.
 */
import { emitKeypressEvents } from 'node:readline';
import ansiEscapes from 'ansi-escapes';
import type { Key } from './keys.js';
import type { Size } from './render.js';

export class Terminal {
  readonly #input: NodeJS.ReadStream;
  readonly #output: NodeJS.WriteStream;
  #onKey: ((text: string | undefined, key: Key | undefined) => void) | null = null;
  #onResize: (() => void) | null = null;
  #open = false;

  constructor(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout) {
    this.#input = input;
    this.#output = output;
  }

  /** Columns and rows, with a floor so a frame can always be laid out. */
  get size(): Size {
    return { columns: Math.max(20, this.#output.columns || 80), rows: Math.max(5, this.#output.rows || 24) };
  }

  /** Takes the terminal; `onKey` gets each key, `onResize` each change of size. */
  open(onKey: (key: Key | undefined) => void, onResize: () => void): void {
    if (this.#open) return;
    this.#open = true;
    // A write to a terminal that went away (SIGHUP) fails with EIO: nothing to show it on.
    this.#output.on('error', ignore);
    this.#onKey = (_text, key) => onKey(key);
    this.#onResize = onResize;
    emitKeypressEvents(this.#input);
    this.#input.setRawMode(true);
    this.#input.on('keypress', this.#onKey);
    this.#input.resume();
    this.#output.on('resize', this.#onResize);
    this.#write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorHide + ansiEscapes.eraseScreen);
  }

  /** Writes one frame over the last. Lines must fit the width already (render.ts sees to it). */
  draw(lines: readonly string[]): void {
    if (!this.#open) return;
    const body = lines.map((l) => l + ansiEscapes.eraseEndLine).join('\r\n');
    this.#write(ansiEscapes.beginSynchronizedOutput + ansiEscapes.cursorTo(0, 0) + body + ansiEscapes.eraseDown + ansiEscapes.endSynchronizedOutput);
  }

  /** Clears the screen (ctrl+l), for when something else wrote over it. */
  clear(): void {
    if (this.#open) this.#write(ansiEscapes.eraseScreen);
  }

  restore(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#onKey !== null) this.#input.off('keypress', this.#onKey);
    if (this.#onResize !== null) this.#output.off('resize', this.#onResize);
    try {
      if (this.#input.isTTY) this.#input.setRawMode(false);
    } catch {
      // the terminal is gone: there is no mode left to restore
    }
    this.#input.pause();
    this.#write(ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen);
  }

  #write(text: string): void {
    try {
      this.#output.write(text);
    } catch {
      // see open(): a terminal that went away
    }
  }
}

function ignore(): void {}
