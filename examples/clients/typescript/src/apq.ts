// Apollo's automatic persisted queries, with Apollo Client's own link.
//
//   node dist/src/apq.js http://127.0.0.1:8000/tasks-graphql RUN_ID
//
// It reads RUN_ID's details twice through Apollo Client and its
// PersistedQueryLink (hashed queries over GET), and prints the run ids read
// and what each HTTP request carried: the first hash is not known yet, so the
// link sends the document once; from then on the hash alone.
import { createHash } from "node:crypto";

import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

import { RunDetailsDocument, type RunDetailsQuery } from "../generated/graphql.js";

type Sent = { method: string; query: boolean; hash: boolean };

/** `fetch`, noting what each request sends. */
function recording(sent: Sent[]): typeof fetch {
  return async (input, init) => {
    const method = init?.method ?? "GET";
    let body: { query?: unknown; extensions?: { persistedQuery?: unknown } };
    if (method === "GET") {
      const url = new URL(input instanceof Request ? input.url : String(input));
      const extensions = url.searchParams.get("extensions");
      body = {
        query: url.searchParams.get("query"),
        extensions: extensions ? JSON.parse(extensions) : undefined,
      };
    } else {
      body = JSON.parse(String(init?.body));
    }
    sent.push({ method, query: Boolean(body.query), hash: Boolean(body.extensions?.persistedQuery) });
    return fetch(input, init);
  };
}

export async function readTwice(url: string, runId: string) {
  const sent: Sent[] = [];
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new PersistedQueryLink({
      sha256: (query: string) => createHash("sha256").update(query).digest("hex"),
      useGETForHashedQueries: true,
    }).concat(new HttpLink({ uri: url, fetch: recording(sent) })),
  });
  const query = gql(RunDetailsDocument.toString());
  const read: Array<string | null> = [];
  for (let i = 0; i < 2; i++) {
    const result = await client.query<RunDetailsQuery>({
      query,
      variables: { runId },
      fetchPolicy: "network-only",
    });
    read.push(result.data?.run?.runId ?? null);
  }
  return { read, sent };
}

const [url, runId] = process.argv.slice(2);
if (!url || !runId) {
  console.error("usage: node dist/src/apq.js GRAPHQL_URL RUN_ID");
  process.exit(2);
}
console.log(JSON.stringify(await readTwice(url, runId), null, 2));
