#!/usr/bin/env python3
"""man2help.py: turns h5mount's manual page (doc/h5mount.1.in, its one source) into the C
header that holds --help, so that the two never disagree. It reads the SYNOPSIS, the first
paragraph of DESCRIPTION and the OPTIONS section, knows only the few roff requests those
parts use (.SS, .TP with one .B/.BI/.BR tag line, .nf/.fi, text with \\fB \\fI \\fR \\- escapes)
and fails on anything else there. Python 3 standard library only.

Usage: man2help.py MANPAGE OUTPUT.h
"""

import re
import sys
import textwrap

WIDTH = 79          # help lines stay under 80 columns
TAG_INDENT = 4      # "    -o cache_size=SIZE"
TEXT_COL = 28       # descriptions start in this column


class ManError(Exception):
    pass


def plain(text):
    """roff text without font changes and escapes, as it reads on a terminal."""
    text = re.sub(r'\\f[BIRP]', '', text)
    text = text.replace('\\-', '-').replace('\\e', '\\').replace('\\&', '')
    text = text.replace('\\(bu', '*').replace("\\(aq", "'")
    if '\\' in text:
        raise ManError('unknown escape in %r' % text)
    return text


def macro_args(line):
    """The arguments of a macro line (.B "a b" c), quotes honoured."""
    return [a[1:-1] if a.startswith('"') else a
            for a in re.findall(r'"[^"]*"|\S+', line.split(None, 1)[1] if ' ' in line else '')]


def tag_text(line):
    name = line.split()[0]
    args = macro_args(line)
    if name == '.B':
        return plain(' '.join(args))
    if name in ('.BI', '.BR', '.IR', '.IB', '.RB', '.RI'):
        return plain(''.join(args))     # alternating fonts: arguments join without spaces
    raise ManError('an option tag must be .B/.BI/.BR, got %r' % line)


def sections(lines):
    """{section name: [lines]} for the .SH sections, comments dropped."""
    out, cur = {}, None
    for line in lines:
        if line.startswith('.\\"'):
            continue
        if line.startswith('.SH '):
            cur = macro_args(line)[0] if '"' in line else line[4:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return out


def synopsis(lines):
    body = [plain(l) for l in lines if l not in ('.nf', '.fi')]
    if not body or any(l.startswith('.') for l in body):
        raise ManError('SYNOPSIS must be plain lines between .nf and .fi')
    return ['usage: ' + body[0]] + ['       ' + l for l in body[1:]]


def first_paragraph(lines):
    para = []
    for line in lines:
        if line.startswith('.'):
            break
        para.append(plain(line))
    return textwrap.wrap(' '.join(para), WIDTH)


def options(lines):
    """Help lines for the OPTIONS section: a title per .SS, then each .TP entry."""
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('.SS '):
            out += ['', plain(macro_args(line)[0]) + ':']
            i += 1
        elif line == '.TP':
            if i + 1 >= len(lines):
                raise ManError('.TP without a tag')
            tag = ' ' * TAG_INDENT + tag_text(lines[i + 1])
            i += 2
            words = []
            while i < len(lines) and not lines[i].startswith('.'):
                words.append(plain(lines[i]))
                i += 1
            if not words:
                raise ManError('option %r has no description' % tag.strip())
            body = textwrap.wrap(' '.join(words), WIDTH - TEXT_COL)
            if len(tag) <= TEXT_COL - 2:
                out.append(tag.ljust(TEXT_COL) + body[0])
                body = body[1:]
            else:
                out.append(tag)
            out += [' ' * TEXT_COL + b for b in body]
        elif not line.strip():
            i += 1
        else:
            raise ManError('unexpected line in OPTIONS: %r' % line)
    return out


def c_lines(lines):
    """The lines as the elements of a C array of strings, NULL-terminated: one literal per
    line, since C99 promises no string literal longer than 4095 bytes (-Woverlength-strings)."""
    out = []
    for line in lines:
        esc = line.replace('\\', '\\\\').replace('"', '\\"')
        out.append('\t"%s",' % esc)
    out.append('\tNULL,')
    return '\n'.join(out)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write('usage: man2help.py MANPAGE OUTPUT.h\n')
        return 2
    with open(argv[1], encoding='utf-8') as fp:
        secs = sections(fp.read().splitlines())
    try:
        for need in ('SYNOPSIS', 'DESCRIPTION', 'OPTIONS'):
            if need not in secs:
                raise ManError('no %s section' % need)
        text = synopsis(secs['SYNOPSIS']) + [''] + first_paragraph(secs['DESCRIPTION'])
        text += options(secs['OPTIONS'])
        text += ['', 'The views, the write rules, durability, mounting from /etc/fstab, exit codes',
                 'and examples: man h5mount']
    except ManError as e:
        sys.stderr.write('man2help.py: %s: %s\n' % (argv[1], e))
        return 1
    too_long = [l for l in text if len(l) > WIDTH]
    if too_long:
        sys.stderr.write('man2help.py: help lines over %d columns: %r\n' % (WIDTH, too_long))
        return 1
    with open(argv[2], 'w', encoding='utf-8') as fp:
        fp.write('/* h5m_help.h: --help, generated by contrib/man2help.py from doc/h5mount.1.in. */\n')
        fp.write('static const char *const h5m_help_lines[] = {\n%s\n};\n' % c_lines(text))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
