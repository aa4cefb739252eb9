import { parse as parseToml } from 'smol-toml';

/** A registry.toml's text cut into the part before the first row and the text of each row. */
export interface RowChunks {
  /** Everything that is not a row: top-level keys and other tables, comments included. */
  head: string;
  /** Each row's tables (`[models."<id>"]` and its subtables), comments included, by id. */
  rows: Map<string, string>;
}

/**
 * Cuts the text of a registry.toml into rows, so a writer can keep the rows it did not change as
 * they were written (hal0's `1.0` stays a float, comments stay). Comment lines just above a
 * table's header go with that table. Other tables (hal0's `[ui]`, say) join the head, wherever
 * they were. Answers undefined for layouts it cannot cut: the older `[[models]]` form, rows
 * given as dotted keys of a `[models]` table, a row whose tables are not together, or a byte
 * order mark. The cut is a guess (lines are not fully parsed as TOML), so the caller checks
 * every piece on its own.
 */
export function splitRowChunks(text: string): RowChunks | undefined {
  if (text.startsWith('\uFEFF')) return undefined;
  const head: string[] = [];
  const others: string[][] = [];
  const rows = new Map<string, string[]>();
  let current = head;
  let currentRow: string | undefined;
  /** Starts a new piece at a header, taking the comment lines right above it (no blank line between) from the piece before. */
  const startPiece = (): string[] => {
    let start = current.length;
    while (start > 0 && /^\s*#/.test(current[start - 1])) start--;
    return current.splice(start);
  };
  let inString: MultilineQuote | undefined;
  for (const line of text.split('\n')) {
    const header = inString ? undefined : tableHeader(line);
    inString = multilineStringAfter(line, inString);
    if (header === 'unsupported') return undefined;
    if (header === 'other' && currentRow !== undefined) {
      current = startPiece();
      others.push(current);
      currentRow = undefined;
    } else if (header !== undefined && header !== 'other' && header.row !== currentRow) {
      if (rows.has(header.row)) return undefined; // this row's tables are not together
      current = startPiece();
      rows.set(header.row, current);
      currentRow = header.row;
    }
    current.push(line);
  }
  return {
    head: [...head, ...others.flat()].join('\n').trim(),
    rows: new Map([...rows].map(([id, lines]) => [id, lines.join('\n').trim()])),
  };
}

type MultilineQuote = '"""' | "'''";

/**
 * Whether a multi-line string is still open after `line` (and which quote closes it), so a line
 * of its text that looks like a header is not taken for one. Escapes and quotes inside comments
 * are not considered: a wrong guess only makes the caller's check fail, and it falls back.
 */
function multilineStringAfter(line: string, open: MultilineQuote | undefined): MultilineQuote | undefined {
  for (let at = 0; ; ) {
    if (open) {
      const end = line.indexOf(open, at);
      if (end < 0) return open;
      at = end + 3;
      open = undefined;
    } else {
      const basic = line.indexOf('"""', at);
      const literal = line.indexOf("'''", at);
      if (basic < 0 && literal < 0) return undefined;
      const start = basic >= 0 && (literal < 0 || basic < literal) ? basic : literal;
      open = start === basic ? '"""' : "'''";
      at = start + 3;
    }
  }
}

/**
 * What a line is: not a table header (undefined: a key, a comment, or a line of a multi-line
 * value that happens to start with `[`), the header of row `<id>` or one of its subtables, a
 * header of some other table, or one this cutter does not handle.
 */
function tableHeader(line: string): { row: string } | 'other' | 'unsupported' | undefined {
  if (!/^[ \t]*\[/.test(line)) return undefined;
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!('models' in doc)) return 'other';
  const models = doc.models;
  if (typeof models !== 'object' || models === null || Array.isArray(models)) return 'unsupported';
  const ids = Object.keys(models);
  return ids.length === 1 ? { row: ids[0] } : 'unsupported'; // [models] itself: rows as dotted keys
}
