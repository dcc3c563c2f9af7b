// A small Markdown subset rendered as DOM nodes: paragraphs, headings, fenced code
// blocks, inline code, bold, italic, lists, block quotes and http(s) links. Every piece
// of text becomes a text node (never innerHTML), so model output cannot inject markup or
// script whatever it contains; a link is made only for an http: or https: URL.

import { h } from './dom.js';

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;

// Returns a DocumentFragment for `text`. An unterminated code fence (an answer still
// streaming) runs to the end of the text.
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text).split(/\r?\n/);
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1; // the closing fence
      const code = h('code', fence[2] ? { class: `language-${fence[2]}` } : {}, body.join('\n'));
      fragment.append(h('pre', { tabindex: 0, 'aria-label': fence[2] ? `${fence[2]} code` : 'code' }, code));
      continue;
    }
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1].length + 2); // h3..h6 inside a message
      fragment.append(h(`h${level}`, {}, renderInline(heading[2])));
      i += 1;
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const numbered = !BULLET.test(line);
      const pattern = numbered ? NUMBERED : BULLET;
      const start = numbered ? Number(NUMBERED.exec(line)[1]) : null;
      const list = h(numbered ? 'ol' : 'ul', numbered && start !== 1 ? { start } : {});
      while (i < lines.length && pattern.test(lines[i])) {
        const match = pattern.exec(lines[i]);
        list.append(h('li', {}, renderInline(numbered ? match[2] : match[1])));
        i += 1;
      }
      fragment.append(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) quoted.push(QUOTE.exec(lines[i++])[1]);
      fragment.append(h('blockquote', {}, renderMarkdown(quoted.join('\n'))));
      continue;
    }
    // A paragraph: lines up to a blank line or the start of another block.
    const paragraph = h('p');
    let first = true;
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i]) &&
           !BULLET.test(lines[i]) && !NUMBERED.test(lines[i]) && !QUOTE.test(lines[i])) {
      if (!first) paragraph.append(h('br'));
      paragraph.append(renderInline(lines[i]));
      first = false;
      i += 1;
    }
    fragment.append(paragraph);
  }
  return fragment;
}

const INLINE = /`([^`]+)`|\*\*(.+?)\*\*|__(.+?)__|\*([^*\s](?:[^*]*[^*\s])?)\*|\b_([^_\s](?:[^_]*[^_\s])?)_\b|\[([^\]]+)\]\(([^()\s]+)\)/;

// The URL when `href` is an absolute http: or https: URL, else null.
export function safeHref(href) {
  try {
    const url = new URL(href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// Inline spans of one line as a DocumentFragment.
export function renderInline(text) {
  const fragment = document.createDocumentFragment();
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      fragment.append(document.createTextNode(rest));
      break;
    }
    if (match.index > 0) fragment.append(document.createTextNode(rest.slice(0, match.index)));
    const [whole, code, bold1, bold2, italic1, italic2, linkText, href] = match;
    if (code !== undefined) {
      fragment.append(h('code', {}, code));
    } else if (bold1 !== undefined || bold2 !== undefined) {
      fragment.append(h('strong', {}, renderInline(bold1 ?? bold2)));
    } else if (italic1 !== undefined || italic2 !== undefined) {
      fragment.append(h('em', {}, renderInline(italic1 ?? italic2)));
    } else {
      const url = safeHref(href);
      fragment.append(url
        ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow' }, renderInline(linkText))
        : document.createTextNode(whole));
    }
    rest = rest.slice(match.index + whole.length);
  }
  return fragment;
}
