// The GraphQL-over-HTTP audit of graphql-http against URL: prints each
// check as a JSON line {name, status, reason}.
import { auditServer } from "graphql-http";

const [url] = process.argv.slice(2);
const results = await auditServer({ url, fetchFn: fetch });
for (const result of results) {
  const { name, status, reason } = result;
  console.log(JSON.stringify({ name, status, reason: reason ?? null }));
}
