// A minimal typed GraphQL client: each generated document carries its result
// and variables types, so a call is checked against the schema at compile time.
//
// With `persisted`, it sends only the document's hash (the one graphql-codegen
// wrote to generated/persisted-documents.json) as a GET request, as a server
// with an allow-list (`gql-history serve --persisted-documents`) expects.
import type { TypedDocumentString } from "../generated/graphql.js";

export class GraphQLError extends Error {}

export type Options = { persisted?: boolean };

type Response<TResult> = {
  data?: TResult | null;
  errors?: ReadonlyArray<{ message: string; extensions?: { code?: string } }>;
};

const ACCEPT = "application/graphql-response+json, application/json";

function persistedRequest(
  url: string,
  document: { __meta__?: Record<string, unknown> },
  variables: unknown,
): Request {
  const hash = document.__meta__?.["hash"];
  if (typeof hash !== "string") {
    throw new GraphQLError("no hash in the document: generate it with persistedDocuments");
  }
  const sha256Hash = hash.replace(/^sha256:/, "");
  const params = new URLSearchParams({
    variables: JSON.stringify(variables),
    extensions: JSON.stringify({ persistedQuery: { version: 1, sha256Hash } }),
  });
  return new Request(`${url}?${params}`, { method: "GET", headers: { accept: ACCEPT } });
}

export async function execute<TResult, TVariables>(
  url: string,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
  options: Options = {},
): Promise<TResult> {
  const request = options.persisted
    ? persistedRequest(url, document, variables)
    : new Request(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: ACCEPT },
        body: JSON.stringify({ query: document.toString(), variables }),
      });
  const response = await fetch(request);
  const body = (await response.json()) as Response<TResult>;
  if (body.errors?.length) {
    const messages = body.errors.map(
      (error) => `${error.message} (${error.extensions?.code ?? "no code"})`,
    );
    throw new GraphQLError(messages.join("; "));
  }
  if (!response.ok || body.data == null) {
    throw new GraphQLError(`HTTP ${response.status} with no data`);
  }
  return body.data;
}
