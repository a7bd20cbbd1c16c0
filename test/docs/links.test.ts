// Every relative link in README.md and docs/*.md leads somewhere: the file exists and, when the
// link names a heading (#anchor), the file has that heading (GitHub's anchor rule: lower case,
// punctuation dropped, spaces to hyphens). Links out of the repository (http, mailto) are not fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The page's text outside fenced code blocks, where a [x](y) is code, not a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

function anchors(file: string): Set<string> {
  const slugs = new Set<string>();
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6} (.+)$/gm)) {
    slugs.add(
      m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-'),
    );
  }
  return slugs;
}

test('README.md and docs/ exist as the newcomer’s way in: a short README and one page per task', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  assert.ok(readme.split('\n').length <= 200, `README.md has ${readme.split('\n').length} lines`);
  for (const page of ['architecture', 'online', 'bulk-jobs', 'models', 'protocol', 'operations', 'deploy', 'scaling', 'performance', 'cli']) {
    assert.ok(PAGES.includes(`docs/${page}.md`), `docs/${page}.md`);
    assert.match(readme, new RegExp(`\\]\\(docs/${page}\\.md\\)`), `the README links docs/${page}.md`);
  }
});

test('every relative link in README.md and docs/ resolves, anchors included', () => {
  let checked = 0;
  for (const page of PAGES) {
    const text = prose(readFileSync(join(ROOT, page), 'utf8'));
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const href = m[1]!;
      if (/^[a-z]+:/i.test(href)) continue;
      const [path, anchor] = href.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, page) : join(ROOT, dirname(page), path);
      assert.ok(existsSync(target), `${page}: ${href} (${relative(ROOT, target)} does not exist)`);
      if (anchor) assert.ok(anchors(target).has(anchor), `${page}: ${href} (no heading #${anchor} in ${relative(ROOT, target)})`);
      checked++;
    }
  }
  assert.ok(checked > 10, `${checked} links checked`);
});
