/**
 * A fast reader for the YAML that BentoML, Neutree and Ferry write for model.yaml: block mappings
 * of plain or simply-quoted scalars, `{}` and `[]`. Listing parses thousands of these, and the full
 * `yaml` parser costs ~100-300 µs each; this costs a few. Anything outside the subset (sequences,
 * anchors, multi-line or escaped strings, numbers other than plain ints, comments after values)
 * returns undefined and the caller uses the full parser, so results never differ from it.
 */
export function parseSimpleYamlMapping(text: string): Record<string, unknown> | undefined {
  const root: Record<string, unknown> = {};
  const stack: Array<{ indent: number; obj: Record<string, unknown> }> = [{ indent: 0, obj: root }];
  let pending: { key: string; obj: Record<string, unknown>; indent: number } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const indent = line.length - content.length;
    if (line.includes('\t') || content.startsWith('---') || content.startsWith('...') || content.startsWith('%')) return undefined;
    if (pending) {
      if (indent > pending.indent) {
        const child: Record<string, unknown> = {};
        pending.obj[pending.key] = child;
        stack.push({ indent, obj: child });
      } else {
        pending.obj[pending.key] = null;
      }
      pending = undefined;
    }
    while (stack.length > 1 && indent < stack[stack.length - 1].indent) stack.pop();
    const top = stack[stack.length - 1];
    if (indent !== top.indent) return undefined;
    const m = KEY_LINE.exec(content);
    if (!m) return undefined;
    const key = unquoteKey(m[1]);
    if (key === undefined || key === '__proto__') return undefined;
    const valueText = m[2];
    if (valueText === undefined || valueText === '') {
      pending = { key, obj: top.obj, indent };
      continue;
    }
    const value = scalar(valueText);
    if (value === NOT_SIMPLE) return undefined;
    top.obj[key] = value;
  }
  if (pending) pending.obj[pending.key] = null;
  return root;
}

const KEY_LINE = /^([A-Za-z0-9_][A-Za-z0-9_.\/ -]*?|'[^']*'|"[^"\\]*"):(?: +(.*))?$/;
const NOT_SIMPLE = Symbol('not simple');

function unquoteKey(key: string): string | undefined {
  if (key.startsWith("'") || key.startsWith('"')) return key.slice(1, -1);
  return key.endsWith(' ') ? undefined : key;
}

/** YAML 1.2 core schema for the scalars we accept; anything else is NOT_SIMPLE. */
function scalar(text: string): unknown {
  const t = text.trimEnd();
  if (t === '{}') return {};
  if (t === '[]') return [];
  if (t.startsWith("'")) {
    if (t.length < 2 || !t.endsWith("'")) return NOT_SIMPLE;
    const inner = t.slice(1, -1);
    if (inner.replace(/''/g, '').includes("'")) return NOT_SIMPLE;
    return inner.replace(/''/g, "'");
  }
  if (t.startsWith('"')) {
    if (t.length < 2 || !t.endsWith('"')) return NOT_SIMPLE;
    const inner = t.slice(1, -1);
    return inner.includes('\\') || inner.includes('"') ? NOT_SIMPLE : inner;
  }
  if (/^[[\]{}&*!|>%@`#,?:-]/.test(t) && !/^-[0-9]/.test(t)) return NOT_SIMPLE;
  if (t.includes(': ') || t.includes(' #') || t.endsWith(':')) return NOT_SIMPLE;
  if (/^(?:~|null|Null|NULL)$/.test(t)) return null;
  if (/^(?:true|True|TRUE)$/.test(t)) return true;
  if (/^(?:false|False|FALSE)$/.test(t)) return false;
  if (/^[-+]?[0-9]+$/.test(t)) {
    const n = Number(t);
    return Number.isSafeInteger(n) ? n : NOT_SIMPLE;
  }
  // Floats, hex, octal, .inf/.nan: rare here, and the full parser's rules are the reference.
  if (/^[-+]?(?:\.[0-9]|[0-9])/.test(t) && /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(t)) return NOT_SIMPLE;
  if (/^0[xo]/.test(t) || /^[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)$/.test(t)) return NOT_SIMPLE;
  return t;
}
