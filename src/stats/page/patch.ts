import morphdom from 'morphdom';

// Sections are patched, not replaced: each one's new HTML is merged into the live nodes by
// morphdom (children matched by data-key, else by id, else by position; morphdom looks keys up
// across the whole section, so the renderers make them unique: `be/api/srv/s1`), so a re-render
// every second changes only the text that changed, and the admin buttons under the pointer
// stay the same elements — a click is never lost to a re-render. morphdom (~3 KB) replaces
// the page's own hand-written merge: it also keeps keyed rows when their order changes, and
// syncs a <select>'s chosen option with the `selected` attribute (the attribute alone is only
// the default, and a select the user touched would keep its own choice).

function keyOf(node: Node): string | undefined {
  if (!(node instanceof Element)) return undefined;
  return node.getAttribute('data-key') ?? (node.id || undefined);
}

const OPTIONS = { childrenOnly: true, getNodeKey: keyOf };

/** Replace the content of the element `id` with `html`, in place. */
export function patch(id: string, html: string): void {
  const el = document.getElementById(id);
  if (el === null) return;
  morphdom(el, `<div>${html}</div>`, OPTIONS);
}
