// DOM helpers. No innerHTML anywhere in the client: every piece of text from the network
// reaches the page through text nodes only.

/** The element with this data-testid. */
export const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** Build an element; string children become text nodes (never parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}
