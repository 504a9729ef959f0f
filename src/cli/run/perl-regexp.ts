// --colsep's regexp: GNU parallel splits with Perl, pidwatch with JS. The Perl forms JS
// lacks or reads otherwise are rewritten here; written by hand, as no maintained library
// translates Perl regexps to JS ones.

/** POSIX classes as Perl reads them in a bracket expression, on bytes (ASCII). */
const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: 'A-Za-z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: '\\t\\n\\v\\f\\r ',
  blank: '\\t ',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9A-Fa-f',
  cntrl: '\\x00-\\x1f\\x7f',
  print: '\\x20-\\x7e',
  graph: '\\x21-\\x7e',
  word: '\\w',
};

/**
 * A --colsep regexp, written for Perl (GNU parallel splits with it), as a JS RegExp: the
 * Perl forms JS lacks or reads otherwise are rewritten: POSIX classes (`[[:space:]]`), `\h`
 * and `\H`, `\s` and `\S` as ASCII blanks (Perl on bytes; JS's `\s` takes Unicode spaces
 * too), and a leading `(?i)`. Throws SyntaxError where JS cannot read the result.
 */
export function perlRegExp(source: string): RegExp {
  let flags = '';
  let rest = source;
  if (rest.startsWith('(?i)')) {
    flags = 'i';
    rest = rest.slice(4);
  }
  const blanks = POSIX_CLASSES.space;
  let out = '';
  let inClass = false;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '\\' && i + 1 < rest.length) {
      const e = rest[++i];
      if (e === 's') out += inClass ? blanks : `[${blanks}]`;
      else if (e === 'S' && !inClass) out += `[^${blanks}]`;
      else if (e === 'h') out += inClass ? '\\t ' : '[\\t ]';
      else if (e === 'H' && !inClass) out += '[^\\t ]';
      else out += c + e;
    } else if (inClass) {
      const posix = /^\[:(\w+):\]/.exec(rest.slice(i));
      if (posix !== null && posix[1] in POSIX_CLASSES) {
        out += POSIX_CLASSES[posix[1]];
        i += posix[0].length - 1;
      } else {
        if (c === ']') inClass = false;
        out += c;
      }
    } else if (c === '[') {
      inClass = true;
      out += c;
      // a ] right after [ or [^ is a member, not the end
      const lead = /^\^?\]?/.exec(rest.slice(i + 1))![0];
      out += lead.replace(']', '\\]');
      i += lead.length;
    } else {
      out += c;
    }
  }
  return new RegExp(out, flags);
}
