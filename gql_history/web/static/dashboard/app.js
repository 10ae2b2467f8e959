// The history dashboard: Preact components written with htm (no build
// step), reading only gql_history's public GraphQL API (see api.js). Every
// view is a URL: filters, cursors and the open run are query parameters.
import {
  html,
  render,
  useCallback,
  useEffect,
  useMemo,
  useRef,
  useState,
} from "../vendor/htm/standalone.module.js";
import { live, OVERVIEW, query, RUN_PAGE, RUNS_COUNT, RUNS_PAGE, TASK_NAMES } from "./api.js";

const PAGE_SIZE = 50;
const STATES = ["INIT", "QUEUED", "RUNNING", "SUCCESS", "FAILURE", "ABORTED", "RATE_LIMITED", "INTERRUPTED"];
const PRIORITIES = ["HIGH", "MEDIUM", "LOW"];
const COLOURS = {
  INIT: "#8c959f", QUEUED: "#bf8700", RUNNING: "#0969da", SUCCESS: "#1a7f37",
  FAILURE: "#cf222e", ABORTED: "#8250df", RATE_LIMITED: "#bc4c00", INTERRUPTED: "#57606a",
};
// time windows: milliseconds back from now, the chart's bucket, and the
// ISO 8601 duration an export asks for (on the database's clock)
const WINDOWS = {
  "1h": [3600e3, "MINUTE", "PT1H"], "24h": [86400e3, "HOUR", "PT24H"],
  "7d": [7 * 86400e3, "HOUR", "P7D"], "30d": [30 * 86400e3, "DAY", "P30D"],
};
const FILTER_KEYS = ["task", "state", "priority", "tags", "window", "params"];
const PAGE = document.body.dataset.page;
const EXPORT = document.body.dataset.export;
const EXPORT_FORMATS = [["csv", "CSV"], ["ndjson", "NDJSON"]];

// --- the URL is the state ---------------------------------------------------

function readUrl() {
  return Object.fromEntries(new URLSearchParams(window.location.search));
}

function hrefFor(params) {
  const search = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
  return search ? `${PAGE}?${search}` : PAGE;
}

function useLocation() {
  const [params, setParams] = useState(readUrl);
  useEffect(() => {
    const onPop = () => setParams(readUrl());
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const navigate = useCallback((next) => {
    window.history.pushState(null, "", hrefFor(next));
    setParams(readUrl());
    window.scrollTo(0, 0);
  }, []);
  return [params, navigate];
}

/** A link inside the dashboard, navigating without a reload. */
function Link({ to, navigate, children, ...rest }) {
  const onClick = (event) => {
    if (event.button || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return html`<a href=${hrefFor(to)} onClick=${onClick} ...${rest}>${children}</a>`;
}

function tagsOf(params) {
  return params.tags ? params.tags.split(",").map((t) => t.trim()).filter(Boolean) : [];
}

function paramsOf(params) {
  if (!params.params) return undefined;
  try {
    return JSON.parse(params.params);
  } catch {
    return undefined; // reported by the filter form; ignored here
  }
}

function filterOf(params) {
  const filter = {};
  if (params.task) filter.task = [params.task];
  if (params.state) filter.state = [params.state];
  if (params.priority) filter.priority = [params.priority];
  if (params.tags) filter.tags = tagsOf(params);
  if (WINDOWS[params.window]) {
    filter.queuedAfter = new Date(Date.now() - WINDOWS[params.window][0]).toISOString();
  }
  const json = paramsOf(params);
  if (json !== undefined) filter.params = json;
  return filter;
}

/** The REST export of every run of a view (its filters, newest first) as
 * `format`: the same filters as `filterOf`, in the REST API's terms. */
function exportHref(params, format) {
  const query = new URLSearchParams({ format });
  if (params.task) query.append("task", params.task);
  if (params.state) query.append("state", params.state.toLowerCase());
  if (params.priority) query.append("priority", params.priority.toLowerCase());
  for (const tag of tagsOf(params)) query.append("tags", tag);
  if (WINDOWS[params.window]) query.append("queued_within", WINDOWS[params.window][2]);
  const json = paramsOf(params);
  if (json !== undefined) query.append("params", JSON.stringify(json));
  return `${EXPORT}?${query}`;
}

function onlyFilters(params) {
  return Object.fromEntries(FILTER_KEYS.filter((k) => params[k]).map((k) => [k, params[k]]));
}

// --- formatting ---------------------------------------------------------------

function when(value) {
  if (!value) return "";
  const date = new Date(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 120) return `${value.toFixed(value < 10 ? 2 : 1)} s`;
  return `${(value / 60).toFixed(1)} min`;
}

function StateBadge({ state }) {
  return html`<span class="state" style=${`--state:${COLOURS[state] || "#57606a"}`}>${state}</span>`;
}

// Secondary reads (counts, facets, the overview) wait for the runs table's
// first page, so that over a large table the rows come first.
let tableShown;
const firstTable = new Promise((resolve) => { tableShown = resolve; });

/** Data of a query, reloaded whenever `key` changes; with `later`, only
 * once the runs table has shown its first page. */
function useQuery(document, variables, key, later = false) {
  const [result, setResult] = useState({ loading: true });
  useEffect(() => {
    const abort = new AbortController();
    setResult((previous) => ({ ...previous, loading: true }));
    (later ? firstTable : Promise.resolve())
      .then(() => query(document, variables, abort.signal))
      .then(
      (data) => setResult({ data }),
      (error) => { if (!abort.signal.aborted) setResult({ error }); },
    );
    return () => abort.abort();
  }, [key]);
  return result;
}

function ErrorNote({ error }) {
  return html`<p class="error" role="alert">${error.message}${error.code ? ` (${error.code})` : ""}</p>`;
}

// --- the live indicator -------------------------------------------------------

function LiveIndicator({ status, paused, onToggle }) {
  const label = paused ? "Paused" : status === "live" ? "Live" : "Reconnecting";
  return html`
    <button type="button" class=${`live ${paused ? "paused" : status}`} aria-pressed=${!paused}
      data-live=${paused ? "paused" : status} onClick=${onToggle}
      title=${paused ? "Resume live updates" : "Pause live updates"}>
      <span class="dot" aria-hidden="true"></span>${label}
    </button>`;
}

// --- filters --------------------------------------------------------------------

function Filters({ params, navigate }) {
  const tasks = useQuery(TASK_NAMES, {}, "tasks", true);
  const [paramsText, setParamsText] = useState(params.params || "");
  const [tagsText, setTagsText] = useState(params.tags || "");
  const [invalid, setInvalid] = useState(null);
  useEffect(() => { setParamsText(params.params || ""); setTagsText(params.tags || ""); }, [params.params, params.tags]);

  const set = (name, value) => navigate({ ...onlyFilters(params), [name]: value });
  const submit = (event) => {
    event.preventDefault();
    if (paramsText.trim()) {
      try {
        const parsed = JSON.parse(paramsText);
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
          throw new Error("not an object");
        }
      } catch {
        setInvalid('params must be a JSON object, e.g. {"user": "u1"}');
        return;
      }
    }
    setInvalid(null);
    navigate({ ...onlyFilters(params), params: paramsText.trim(), tags: tagsText.trim() });
  };
  const names = (tasks.data && tasks.data.taskNames) || [];
  const select = (name, label, options) => html`
    <label>${label}
      <select name=${name} value=${params[name] || ""} onChange=${(e) => set(name, e.target.value)}>
        <option value="">any</option>
        ${options.map(([value, text]) => html`<option value=${value}>${text}</option>`)}
      </select>
    </label>`;
  return html`
    <form class="filters" onSubmit=${submit} aria-label="Filters">
      ${select("task", "Task", [
        ...(params.task && !names.some((n) => n.task === params.task) ? [[params.task, params.task]] : []),
        ...names.map((n) => [n.task, `${n.task} (${n.count})`]),
      ])}
      ${select("state", "State", STATES.map((s) => [s, s]))}
      ${select("priority", "Priority", PRIORITIES.map((p) => [p, p]))}
      ${select("window", "Queued", [["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"], ["30d", "last 30 days"]])}
      <label>Tags
        <input name="tags" value=${tagsText} placeholder="ops, billing" onInput=${(e) => setTagsText(e.target.value)} />
      </label>
      <label class="wide">Params (JSON)
        <input name="params" value=${paramsText} placeholder='{"user": "u1"}' spellcheck="false"
          aria-invalid=${invalid ? "true" : "false"} onInput=${(e) => setParamsText(e.target.value)} />
      </label>
      <button type="submit">Apply</button>
      ${Object.keys(onlyFilters(params)).length ? html`<button type="button" onClick=${() => navigate({})}>Clear</button>` : ""}
      ${invalid && html`<p class="error" role="alert">${invalid}</p>`}
    </form>`;
}

// --- the runs table -----------------------------------------------------------

function RunsTable({ params, navigate, paused, setStatus }) {
  const filter = useMemo(() => filterOf(params), [hrefFor(onlyFilters(params))]);
  const paging = params.before
    ? { last: PAGE_SIZE, before: params.before }
    : { first: PAGE_SIZE, after: params.after || null };
  const key = hrefFor(params);
  const page = useQuery(RUNS_PAGE, { filter, ...paging }, key);
  const count = useQuery(RUNS_COUNT, { filter }, hrefFor(onlyFilters(params)), true);
  const [rows, setRows] = useState([]);
  const firstPage = !params.after && !params.before;

  useEffect(() => {
    if (page.data) setRows(page.data.runs.edges.map((e) => e.node));
    if (page.data || page.error) setTimeout(tableShown);
  }, [page.data, page.error]);

  // live: changed runs update in place; new ones join the first page. After
  // a pause it resumes from the last change received (or the pause).
  const since = useRef(null);
  const filterKey = hrefFor(onlyFilters(params));
  useEffect(() => { since.current = null; }, [filterKey]);
  useEffect(() => {
    if (paused) {
      setStatus("paused");
      if (!since.current) since.current = new Date().toISOString();
      return undefined;
    }
    return live(filter, since.current, (run) => {
      if (run.updated && (!since.current || run.updated > since.current)) since.current = run.updated;
      setRows((current) => {
        const at = current.findIndex((r) => r.runId === run.runId);
        if (at >= 0) return current.map((r, i) => (i === at ? run : r));
        if (!firstPage) return current;
        return [run, ...current].sort((a, b) => (a.queued < b.queued ? 1 : a.queued > b.queued ? -1 : 0));
      });
    }, setStatus);
  }, [filterKey, firstPage, paused]);

  if (page.error) return html`<${ErrorNote} error=${page.error} />`;
  const info = page.data && page.data.runs.pageInfo;
  const filters = onlyFilters(params);
  const newer = info && (params.after ? true : info.hasPreviousPage);
  const older = info && (params.before ? true : info.hasNextPage);
  const pager = (where) => html`
    <nav class="pager" aria-label=${`Pages (${where})`}>
      <button type="button" data-page="newer" disabled=${!newer}
        onClick=${() => navigate({ ...filters, before: info.startCursor })}>← Newer</button>
      ${where === "top"
        ? html`<span class="count" aria-live="polite">${count.data ? `${count.data.runs.totalCount.toLocaleString()} runs` : ""}</span>`
        : ""}
      <button type="button" data-page="older" disabled=${!older}
        onClick=${() => navigate({ ...filters, after: info.endCursor })}>Older →</button>
    </nav>`;
  return html`
    <section aria-labelledby="runs-title" aria-busy=${page.loading ? "true" : "false"}>
      <h2 id="runs-title">Runs <small class="export">export this view:
        ${EXPORT_FORMATS.map(([format, label]) => html` <a href=${exportHref(params, format)} download
          data-export=${format} title=${`Download the runs of this view as ${label}`}>${label}</a>`)}</small></h2>
      ${pager("top")}
      <div class="table-wrap">
        <table class="runs">
          <thead><tr>
            <th scope="col">Run</th><th scope="col">Task</th><th scope="col">State</th>
            <th scope="col" class="opt">Priority</th><th scope="col">Queued</th>
            <th scope="col" class="num">Duration</th><th scope="col" class="opt">Error</th>
          </tr></thead>
          <tbody>
            ${rows.map((run) => html`
              <tr key=${run.runId} data-run-id=${run.runId} data-state=${run.state}>
                <td class="id"><${Link} to=${{ run: run.runId }} navigate=${navigate} title=${run.runId}>${run.runId.slice(0, 12)}</${Link}></td>
                <td>${run.task}</td>
                <td><${StateBadge} state=${run.state} /></td>
                <td class="opt">${run.priority}</td>
                <td><time datetime=${run.queued}>${when(run.queued)}</time></td>
                <td class="num">${seconds(run.duration)}</td>
                <td class="opt">${run.error ? run.error.type : ""}</td>
              </tr>`)}
          </tbody>
        </table>
        ${page.data && !rows.length ? html`<p class="empty">No run matches these filters.</p>` : ""}
      </div>
      ${pager("bottom")}
    </section>`;
}

// --- the overview -------------------------------------------------------------

function Chart({ series }) {
  const target = useRef(null);
  useEffect(() => {
    if (!target.current || !window.uPlot || !series.length) return undefined;
    const present = STATES.filter((s) => series.some((p) => p.byState.some((c) => c.state === s)));
    const xs = series.map((p) => Date.parse(p.start) / 1000);
    const ys = present.map((s) => series.map((p) => (p.byState.find((c) => c.state === s) || { count: 0 }).count));
    const width = () => Math.max(280, target.current.clientWidth);
    const plot = new window.uPlot({
      width: width(), height: 220,
      series: [{}, ...present.map((s) => ({ label: s, stroke: COLOURS[s], width: 2, points: { show: false } }))],
      axes: [{}, { size: 50 }],
      legend: { live: false },
    }, [xs, ...ys], target.current);
    const resize = () => plot.setSize({ width: width(), height: 220 });
    window.addEventListener("resize", resize);
    return () => { window.removeEventListener("resize", resize); plot.destroy(); };
  }, [series]);
  return html`<div class="chart" ref=${target} role="img" aria-label="Runs per state over time"></div>`;
}

function TaskList({ title, items, params, navigate, state }) {
  return html`
    <div class="card">
      <h3>${title}</h3>
      ${items.length ? html`<ol>${items.slice(0, 5).map((t) => html`
        <li><${Link} to=${{ ...onlyFilters(params), task: t.task, state }} navigate=${navigate}>${t.task}</${Link}>
          <span class="n">${t.count.toLocaleString()}</span></li>`)}</ol>` : html`<p class="empty">none</p>`}
    </div>`;
}

function Overview({ params, navigate }) {
  const filter = useMemo(() => filterOf(params), [hrefFor(onlyFilters(params))]);
  const bucket = (WINDOWS[params.window] || [0, "HOUR"])[1];
  const failing = { ...filter, state: ["FAILURE"] };
  const result = useQuery(OVERVIEW, { filter, failing, bucket }, hrefFor(onlyFilters(params)), true);
  if (result.error) return html`<${ErrorNote} error=${result.error} />`;
  if (!result.data) return html`<section class="overview" aria-busy="true"><h2>Overview</h2></section>`;
  const { stats, failing: failed } = result.data;
  const d = stats.duration;
  return html`
    <section class="overview" aria-labelledby="overview-title">
      <h2 id="overview-title">Overview <small>${when(stats.windowStart)} – ${when(stats.windowEnd)}</small></h2>
      <${Chart} series=${stats.series} />
      <div class="cards">
        <div class="card"><h3>Runs</h3><p class="big">${stats.total.toLocaleString()}</p>
          <ul class="states">${stats.byState.map((s) => html`<li><${StateBadge} state=${s.state} /> ${s.count.toLocaleString()}</li>`)}</ul></div>
        <div class="card"><h3>Duration</h3>
          <dl class="pct"><dt>p50</dt><dd>${seconds(d.p50)}</dd><dt>p95</dt><dd>${seconds(d.p95)}</dd>
            <dt>mean</dt><dd>${seconds(d.avg)}</dd><dt>max</dt><dd>${seconds(d.max)}</dd></dl></div>
        <${TaskList} title="Busiest tasks" items=${stats.byTask} params=${params} navigate=${navigate} />
        <${TaskList} title="Most failing" items=${failed.byTask} params=${params} navigate=${navigate} state="FAILURE" />
      </div>
    </section>`;
}

// --- a run's page -------------------------------------------------------------

function RunLink({ run, navigate, current }) {
  return html`<${Link} to=${{ run: run.runId }} navigate=${navigate} title=${run.runId} aria-current=${current ? "page" : undefined}>
    ${run.task} <code>${run.runId.slice(0, 12)}</code></${Link}> <${StateBadge} state=${run.state} />`;
}

function Lineage({ run, navigate }) {
  const children = run.children.edges.map((e) => e.node);
  const kids = children.length ? html`<ul>${children.map((c) => html`<li data-lineage="child"><${RunLink} run=${c} navigate=${navigate} /></li>`)}</ul>` : "";
  let tree = html`<li data-lineage="self"><${RunLink} run=${run} navigate=${navigate} current=${true} />${kids}</li>`;
  if (run.parent) tree = html`<li data-lineage="parent"><${RunLink} run=${run.parent} navigate=${navigate} /><ul>${tree}</ul></li>`;
  if (run.root && (!run.parent || run.root.runId !== run.parent.runId)) {
    tree = html`<li data-lineage="root"><${RunLink} run=${run.root} navigate=${navigate} /><ul>${run.parent && run.parent.parentRunId !== run.root.runId ? html`<li class="gap" aria-label="runs between">…</li>` : ""}${tree}</ul></li>`;
  }
  return html`
    <section aria-labelledby="lineage-title">
      <h2 id="lineage-title">Lineage</h2>
      <ul class="tree">${tree}</ul>
      ${run.children.totalCount > children.length ? html`<p>${run.children.totalCount - children.length} more children</p>` : ""}
    </section>`;
}

function RunPage({ id, navigate }) {
  useEffect(() => tableShown(), []); // no table here: nothing waits for it
  const result = useQuery(RUN_PAGE, { id }, id);
  if (result.error) return html`<${ErrorNote} error=${result.error} />`;
  if (!result.data) return html`<p class="loading">Loading run ${id}...</p>`;
  const run = result.data.run;
  if (!run) return html`<p class="error" role="alert">No run ${id}.</p>`;
  const fields = [
    ["Run id", html`<code>${run.runId}</code>`], ["Task", html`<${Link} to=${{ task: run.task }} navigate=${navigate}>${run.task}</${Link}>`],
    ["State", html`<${StateBadge} state=${run.state} />`], ["Priority", run.priority],
    ["Queued", when(run.queued)], ["Started", when(run.start)], ["Ended", when(run.end)],
    ["Duration", seconds(run.duration)], ["Retry attempt", run.retryAttempt ?? ""],
    ["Tags", run.tags.join(", ")], ["Last written", when(run.updated)], ["Global id", html`<code>${run.id}</code>`],
  ];
  return html`
    <article class="run" data-run-id=${run.runId}>
      <p><${Link} to=${{}} navigate=${navigate}>← All runs</${Link}></p>
      <h2>${run.task} <${StateBadge} state=${run.state} /></h2>
      <dl class="fields">${fields.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
      ${run.error && html`<section aria-labelledby="error-title"><h2 id="error-title">Error</h2>
        <pre class="error-message"><strong>${run.error.type}</strong>: ${run.error.message}</pre></section>`}
      <section aria-labelledby="params-title"><h2 id="params-title">Params</h2>
        <pre class="params">${JSON.stringify(run.params, null, 2)}</pre></section>
      <${Lineage} run=${run} navigate=${navigate} />
    </article>`;
}

// --- the page -----------------------------------------------------------------

function App() {
  const [params, navigate] = useLocation();
  const [paused, setPaused] = useState(false);
  const [status, setStatus] = useState("connecting");
  const graphiql = document.body.dataset.graphql;
  return html`
    <header>
      <h1><${Link} to=${{}} navigate=${navigate}>Task history</${Link}></h1>
      <nav aria-label="Elsewhere"><a href=${graphiql}>GraphiQL</a></nav>
      ${!params.run && html`<${LiveIndicator} status=${status} paused=${paused} onToggle=${() => setPaused(!paused)} />`}
    </header>
    <main>
      ${params.run
        ? html`<${RunPage} id=${params.run} navigate=${navigate} />`
        : html`
          <${Filters} params=${params} navigate=${navigate} />
          <${RunsTable} params=${params} navigate=${navigate} paused=${paused} setStatus=${setStatus} />
          <${Overview} params=${params} navigate=${navigate} />`}
    </main>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the page's "Loading" note
render(html`<${App} />`, root);
