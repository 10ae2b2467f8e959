// The dashboard's only way to the history: gql_history's public GraphQL
// API, over HTTP for reads and graphql-ws (graphql-transport-ws) for
// `runUpdates`. Each document is a `gql` template, which the test suite
// validates against the schema so that the dashboard cannot drift from it.
const gql = String.raw;
const endpoint = document.body.dataset.graphql;

const RUN_FIELDS = gql`
  fragment RunRow on TaskRun {
    runId task state priority queued start end duration updated
    error { type }
  }`;

export const RUNS_PAGE = gql`
  query DashboardRuns($filter: TaskRunFilter, $first: Int, $after: String, $last: Int, $before: String) {
    runs(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { node { ...RunRow } }
    }
  }` + RUN_FIELDS;

export const RUNS_COUNT = gql`
  query DashboardCount($filter: TaskRunFilter) { runs(filter: $filter) { totalCount } }`;

export const TASK_NAMES = gql`
  query DashboardTasks { taskNames { task count } }`;

export const RUN_UPDATES = gql`
  subscription DashboardUpdates($filter: TaskRunFilter, $after: String, $since: DateTime) {
    runUpdates(filter: $filter, after: $after, since: $since) { ...RunRow resumeToken }
  }` + RUN_FIELDS;

export const OVERVIEW = gql`
  query DashboardOverview($filter: TaskRunFilter, $failing: TaskRunFilter, $bucket: StatsBucket) {
    stats: runStats(filter: $filter, bucket: $bucket) {
      bucket windowStart windowEnd total
      byState { state count }
      byTask { task count }
      duration { count avg p50 p95 max }
      series { start total byState { state count } }
    }
    failing: runStats(filter: $failing, bucket: $bucket) { byTask { task count } }
  }`;

const LINK = gql`
  fragment RunLink on TaskRun { runId task state queued parentRunId }`;

export const RUN_PAGE = gql`
  query DashboardRun($id: String!) {
    run(id: $id) {
      id runId task state priority queued start end duration updated
      params retryAttempt tags parentRunId rootRunId
      error { type message }
      parent { ...RunLink }
      root { ...RunLink }
      children(first: 100) { totalCount edges { node { ...RunLink } } }
    }
  }` + LINK;

/** A GraphQL error, with its `extensions.code`. */
export class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

/** Run a query; its data, or an ApiError. */
export async function query(document, variables = {}, signal = undefined) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ query: document, variables }),
    signal,
  });
  const body = await response.json().catch(() => ({}));
  if (body.errors && body.errors.length) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions && first.extensions.code);
  }
  if (!response.ok) throw new ApiError(`HTTP ${response.status}`);
  return body.data;
}

let client = null;
const RESUME_MARGIN = 5000;

function wsClient() {
  if (client === null) {
    const url = new URL(endpoint, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    // No retries of its own: `live` resubscribes with `after` itself, so
    // that nothing written while disconnected is missed.
    client = window.graphqlWs.createClient({ url: url.href, lazy: true, retryAttempts: 0 });
  }
  return client;
}

/**
 * Follow `runUpdates(filter)` from `since` (if given), resuming after a
 * disconnect exactly after the last run received (its `resumeToken`), or,
 * before any came, from `since`. `onRun(run)` gets each run,
 * `onStatus("live" | "reconnecting")` the connection's state. Returns a
 * function that stops following.
 */
export function live(filter, since, onRun, onStatus) {
  let stopped = false;
  let unsubscribe = () => {};
  let retry = null;
  let delay = 500;
  let after = null;

  function start() {
    onStatus("connecting");
    let opened = false;
    const variables = after ? { filter, after } : { filter, since };
    unsubscribe = wsClient().subscribe(
      { query: RUN_UPDATES, variables },
      {
        next(message) {
          if (!opened) { opened = true; onStatus("live"); }
          delay = 500;
          const run = message.data && message.data.runUpdates;
          if (run) {
            if (run.updated && (!since || run.updated > since)) since = run.updated;
            if (run.resumeToken) after = run.resumeToken;
            onRun(run);
          }
        },
        error() { again(); },
        complete() { again(); },
      },
    );
    // graphql-ws sends nothing until a run changes: live once acknowledged.
    // Should it drop before any run came, resume from about then (a few
    // seconds early, for clocks apart: a run sent twice only updates twice).
    const off = wsClient().on("connected", () => {
      off();
      if (!since) since = new Date(Date.now() - RESUME_MARGIN).toISOString();
      if (!opened) { opened = true; onStatus("live"); }
    });
  }

  function again() {
    if (stopped) return;
    onStatus("reconnecting");
    retry = setTimeout(start, delay);
    delay = Math.min(delay * 2, 10000);
  }

  start();
  return () => {
    stopped = true;
    clearTimeout(retry);
    unsubscribe();
  };
}
