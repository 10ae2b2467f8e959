// A minimal typed GraphQL client: each generated document carries its result
// and variables types, so a call is checked against the schema at compile time.
import type { TypedDocumentString } from "../generated/graphql.js";

export class GraphQLError extends Error {}

type Response<TResult> = {
  data?: TResult | null;
  errors?: ReadonlyArray<{ message: string }>;
};

export async function execute<TResult, TVariables>(
  url: string,
  document: TypedDocumentString<TResult, TVariables>,
  variables: TVariables,
): Promise<TResult> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
    },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json()) as Response<TResult>;
  if (body.errors?.length) {
    throw new GraphQLError(body.errors.map((error) => error.message).join("; "));
  }
  if (!response.ok || body.data == null) {
    throw new GraphQLError(`HTTP ${response.status} with no data`);
  }
  return body.data;
}
