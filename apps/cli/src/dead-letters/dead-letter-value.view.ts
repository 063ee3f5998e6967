/**
 * A dead letter's value for `dlq show`: parsed when it is JSON, else the text as it is. JSON.parse would round an
 * integer beyond 2^53 (a corrupt or hostile amount, say), and the operator must see the digits the message holds:
 * such integers are shown as strings of their exact digits. Other numbers (fractions, exponents) are parsed as usual.
 */
export function showValue(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(quoteUnsafeIntegers(text));
  } catch {
    return text;
  }
}

/** `text` with every integer literal outside strings and beyond Number.MAX_SAFE_INTEGER in quotes. */
function quoteUnsafeIntegers(text: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"') {
      i = endOfString(text, i);
      continue;
    }
    if (c !== '-' && (c < '0' || c > '9')) continue;
    let end = i + 1;
    while (end < text.length && /[0-9.eE+-]/.test(text[end])) end += 1;
    const literal = text.slice(i, end);
    if (/^-?(0|[1-9]\d*)$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
      out += `${text.slice(from, i)}"${literal}"`;
      from = end;
    }
    i = end - 1;
  }
  return out + text.slice(from);
}

/** The index of the quote that closes the string opened at `start`, or the text's end. */
function endOfString(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i += 1) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === '"') return i;
  }
  return text.length;
}
