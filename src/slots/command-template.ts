import { FerryError } from '../errors/ferry-error.js';

/** A placeholder's value: a string goes inside one argument, a list only stands for whole arguments. */
export type TemplateValue = string | number | readonly string[] | undefined;

/**
 * Splits a command line the way a POSIX shell splits words, without any expansion:
 * whitespace separates, '...' is literal, "..." honours \" and \\, a backslash outside
 * quotes escapes the next character. Nothing is ever handed to a shell.
 */
export function splitCommandLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && (line[i + 1] === '"' || line[i + 1] === '\\')) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new FerryError('slot.invalid', `unterminated ${quote} quote in command ${JSON.stringify(line)}`);
  if (inWord) words.push(word);
  return words;
}

const PLACEHOLDER = /\{([a-z_][a-z0-9_]*)\}/g;

/**
 * Turns a template like `llama-server -m {path} --port {port} {extra_args}` into argv.
 * The template is split first and placeholders are substituted inside each argument, so a
 * value with spaces or quotes stays one argument. An argument that is exactly one
 * placeholder with a list value becomes that many arguments (none for an empty list, and
 * none for an undefined value). An unknown placeholder is an error, not a literal.
 */
export function expandCommandTemplate(template: string, values: Record<string, TemplateValue>): string[] {
  const argv: string[] = [];
  for (const word of splitCommandLine(template)) {
    const whole = /^\{([a-z_][a-z0-9_]*)\}$/.exec(word);
    if (whole) {
      const value = lookup(values, whole[1], template);
      if (value === undefined) continue;
      if (Array.isArray(value)) argv.push(...value);
      else argv.push(String(value));
      continue;
    }
    argv.push(
      word.replace(PLACEHOLDER, (_m, key: string) => {
        const value = lookup(values, key, template);
        if (Array.isArray(value)) throw new FerryError('slot.invalid', `{${key}} is a list and must be a whole argument in ${JSON.stringify(template)}`);
        return value === undefined ? '' : String(value);
      }),
    );
  }
  if (argv.length === 0 || argv[0] === '') throw new FerryError('slot.invalid', `the command template ${JSON.stringify(template)} names no program`);
  return argv;
}

/** Expands a single-string template such as a health URL (no splitting). */
export function expandTemplateString(template: string, values: Record<string, TemplateValue>): string {
  return template.replace(PLACEHOLDER, (_m, key: string) => {
    const value = lookup(values, key, template);
    if (Array.isArray(value)) throw new FerryError('slot.invalid', `{${key}} is a list and cannot be used in ${JSON.stringify(template)}`);
    return value === undefined ? '' : encodeURIComponent(String(value));
  });
}

function lookup(values: Record<string, TemplateValue>, key: string, template: string): TemplateValue {
  if (!Object.prototype.hasOwnProperty.call(values, key)) {
    throw new FerryError('slot.invalid', `unknown placeholder {${key}} in ${JSON.stringify(template)}`, {
      hint: `known placeholders: ${Object.keys(values).map((k) => `{${k}}`).join(', ')}`,
    });
  }
  return values[key];
}
