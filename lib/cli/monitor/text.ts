/**
 * Width arithmetic for lines that carry colour codes: what a terminal shows of them, and how to
 * cut them to a width without cutting an escape sequence in half or leaving a colour switched on.
 *
 * Every code point counts as one column (wide CJK characters and emoji count one too few); the
 * monitor's own text is ASCII plus `…`, `›` and `↑↓`, and names from the supervisor are cleaned.
 */

/** CSI sequences (colours, cursor moves) and the few two-byte ESC sequences. */
const ESCAPE = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-Z\\-_]/y;
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b[@-Z\\-_]/g;
const RESET = '\u001b[0m';

/** The columns `line` takes on a terminal: its code points, escape sequences left out. */
export function visibleWidth(line: string): number {
  let n = 0;
  for (const _ of line.replace(ESCAPES, '')) n++;
  return n;
}

/**
 * `line` cut to at most `width` columns, the last one an ellipsis when something was cut. Escape
 * sequences are kept whole, and a cut line that contains any ends with a reset so no colour
 * leaks into what follows.
 */
export function fit(line: string, width: number): string {
  if (width <= 0) return '';
  if (visibleWidth(line) <= width) return line;
  let out = '';
  let seen = 0;
  let styled = false;
  let i = 0;
  while (i < line.length && seen < width - 1) {
    ESCAPE.lastIndex = i;
    const m = ESCAPE.exec(line);
    if (m !== null) {
      out += m[0];
      styled = true;
      i += m[0].length;
      continue;
    }
    const ch = String.fromCodePoint(line.codePointAt(i) as number);
    out += ch;
    seen++;
    i += ch.length;
  }
  return `${out}…${styled ? RESET : ''}`;
}

/**
 * Text from the supervisor (names, reasons, problems) made safe for one table cell: control
 * characters (newlines, tabs, ESC) become spaces, so a row stays one line and cannot move the cursor.
 */
export function clean(text: unknown): string {
  return String(text ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}
