// Print caniemail's findings for one HTML file as JSON (used by tests/browser.py::caniemail_report).
//
// Usage: node tests/js/caniemail-check.mjs EMAIL.html [CLIENT_GLOB ...]
// Default clients: gmail.*, outlook.*, apple-mail.*.
// Output: {"success": bool, "clients": [...], "errors": {client: [issue]}, "warnings": {client: [issue]}}
// where issue = {"title", "support", "notes", "line"} (line is null for document-wide features).
import { readFileSync } from 'node:fs';
import { caniemail } from 'caniemail';

const [htmlPath, ...globs] = process.argv.slice(2);
if (!htmlPath) {
  console.error('usage: node caniemail-check.mjs EMAIL.html [CLIENT_GLOB ...]');
  process.exit(2);
}
const clients = globs.length > 0 ? globs : ['gmail.*', 'outlook.*', 'apple-mail.*'];
const html = readFileSync(htmlPath, 'utf8');
const result = caniemail({ clients, html });

const plain = (featureMap) =>
  Object.fromEntries(
    [...featureMap.entries()].map(([client, issues]) => [
      client,
      issues.map((issue) => ({
        title: issue.title,
        support: issue.support,
        notes: issue.notes,
        line: issue.position ? issue.position.start.line : null,
      })),
    ]),
  );

process.stdout.write(
  JSON.stringify({
    success: result.success,
    clients,
    errors: plain(result.issues.errors),
    warnings: plain(result.issues.warnings),
  }) + '\n',
);
