// GraphiQL on the endpoint it is served from, with the explorer plugin.
// A link's `query`, `variables` and `operationName` open in the editor;
// edits are kept in the URL, so the address bar shares them.
(function () {
  "use strict";
  const body = document.body;
  const params = new URLSearchParams(window.location.search);
  const endpoint = window.location.origin + window.location.pathname;
  const wsUrl = endpoint.replace(/^http/, "ws");

  function keepInUrl(name, value) {
    const next = new URLSearchParams(window.location.search);
    if (value) next.set(name, value);
    else next.delete(name);
    const search = next.toString();
    window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  const fetcher = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: wsUrl });
  const explorer = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: body.dataset.defaultQuery,
      query: params.get("query") || undefined,
      variables: params.get("variables") || undefined,
      operationName: params.get("operationName") || undefined,
      defaultEditorToolsVisibility: Boolean(params.get("variables")),
      onEditQuery: function (value) { keepInUrl("query", value); },
      onEditVariables: function (value) { keepInUrl("variables", value); },
      onEditOperationName: function (value) { keepInUrl("operationName", value); },
      inputValueDeprecation: true,
      isHeadersEditorEnabled: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
