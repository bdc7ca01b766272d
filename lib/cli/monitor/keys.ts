/**
 * The monitor's keys, as readline's `keypress` events describe them, mapped to what they mean.
 * Raw mode (terminal.ts) turns off the terminal's own meaning of ctrl+c (SIGINT) and ctrl+s / ctrl+q
 * (flow control, IXON), so they arrive here as the bytes 0x03, 0x13 and 0x11.
 */

/** What a key asks for. */
export type KeyCommand =
  | { kind: 'quit' }
  | { kind: 'move'; by: number }
  | { kind: 'service'; verb: ServiceVerb }
  | { kind: 'redraw' };

export type ServiceVerb = 'start' | 'stop' | 'restart';

/** The second argument of readline's `keypress` event. */
export interface Key {
  name?: string | undefined;
  ctrl?: boolean | undefined;
  meta?: boolean | undefined;
  shift?: boolean | undefined;
  sequence?: string | undefined;
}

/** The command of `key`, or null for a key the monitor ignores. */
export function commandFor(key: Key | undefined): KeyCommand | null {
  if (key === undefined) return null;
  // readline reports a lone Esc as meta (it is the meta prefix with nothing after it).
  if (key.name === 'escape') return { kind: 'quit' };
  if (key.meta === true) return null;
  if (key.ctrl === true) {
    switch (key.name) {
      case 'c': return { kind: 'quit' };
      case 's': return { kind: 'service', verb: 'start' };
      case 'k': return { kind: 'service', verb: 'stop' };
      case 'l': return { kind: 'redraw' };
      default: return null;
    }
  }
  switch (key.name) {
    case 'q': return { kind: 'quit' };
    case 'up': case 'k': return { kind: 'move', by: -1 };
    case 'down': case 'j': return { kind: 'move', by: 1 };
    case 'pageup': case 'home': return { kind: 'move', by: -Infinity };
    case 'pagedown': case 'end': return { kind: 'move', by: Infinity };
    case 'r': return key.shift === true ? null : { kind: 'service', verb: 'restart' };
    default: return null;
  }
}

/** The service `by` rows away from `current` in `names` (clamped to the ends); null when empty. */
export function moveSelection(names: readonly string[], current: string | null, by: number): string | null {
  if (names.length === 0) return null;
  const at = current === null ? -1 : names.indexOf(current);
  const from = at < 0 ? 0 : at;
  const to = Number.isFinite(by) ? from + by : by < 0 ? 0 : names.length - 1;
  return names[Math.min(names.length - 1, Math.max(0, to))] as string;
}
