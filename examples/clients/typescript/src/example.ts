// Read task history through the typed documents graphql-codegen generated.
//
//   npm run codegen && npm run build
//   node dist/src/example.js http://127.0.0.1:8000/tasks-graphql RUN_ID [--persisted]
//
// --persisted sends each operation's hash instead of its document, for a
// server that runs only the operations of generated/persisted-documents.json.
//
// It reads a page of runs, the next page and back, the failures of one user,
// and the lineage of RUN_ID, and prints what it found as JSON: the same
// summary the Python example prints.
import {
  HistoryPageDocument,
  RunDetailsDocument,
  type RunSummaryFragment,
} from "../generated/graphql.js";
import { execute, type Options } from "./client.js";

const PAGE_SIZE = 2;

function runIds(edges: ReadonlyArray<{ node: RunSummaryFragment }>): string[] {
  return edges.map((edge) => edge.node.runId);
}

export async function summarise(url: string, runId: string, options: Options = {}) {
  const first = (
    await execute(url, HistoryPageDocument, { first: PAGE_SIZE }, options)
  ).runs;
  const following = (
    await execute(
      url,
      HistoryPageDocument,
      { first: PAGE_SIZE, after: first.pageInfo.endCursor },
      options,
    )
  ).runs;
  const back = (
    await execute(
      url,
      HistoryPageDocument,
      { last: PAGE_SIZE, before: following.pageInfo.startCursor },
      options,
    )
  ).runs;
  const failures = (
    await execute(
      url,
      HistoryPageDocument,
      {
        first: 10,
        filter: {
          state: ["FAILURE"],
          params: { user: "u1" },
          queuedAfter: "2020-01-01T00:00:00+00:00",
        },
      },
      options,
    )
  ).runs;
  const run = (await execute(url, RunDetailsDocument, { runId }, options)).run;
  if (run == null) {
    throw new Error(`no run ${runId}`);
  }
  // DateTime is an ISO string and JSON an object: the compiler checks both.
  const queued: string = run.queued;
  const params: Record<string, unknown> = run.params;
  return {
    total: first.totalCount,
    firstPage: runIds(first.edges),
    nextPage: runIds(following.edges),
    nextHasPreviousPage: following.pageInfo.hasPreviousPage,
    previousPage: runIds(back.edges),
    failures: failures.edges.map(({ node }) => ({
      runId: node.runId,
      task: node.task,
      error: node.error ? [node.error.type, node.error.message] : null,
    })),
    run: {
      runId: run.runId,
      task: run.task,
      state: run.state,
      queued,
      params,
      parent: run.parent?.runId ?? null,
      root: run.root?.runId ?? null,
      children: runIds(run.children.edges),
      childCount: run.children.totalCount,
    },
    scalarTypes: { queued: typeof queued, params: typeof params },
  };
}

const [url, runId, flag] = process.argv.slice(2);
if (!url || !runId || (flag !== undefined && flag !== "--persisted")) {
  console.error("usage: node dist/src/example.js GRAPHQL_URL RUN_ID [--persisted]");
  process.exit(2);
}
const summary = await summarise(url, runId, { persisted: flag === "--persisted" });
console.log(JSON.stringify(summary, null, 2));
