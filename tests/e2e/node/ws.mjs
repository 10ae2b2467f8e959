// Websocket cases against a graphql-transport-ws URL, each printing what
// happened as JSON lines:
//   subscribe URL QUERY VARIABLES N  graphql-ws: the first N results (or the
//                                    error ending the subscription)
//   drop URL QUERY                   graphql-ws: subscribe, then drop the
//                                    socket once the first result came
//   silent URL                       a raw socket that never initialises
//   big URL BYTES                    a raw socket sending one message that long
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [command, url, ...rest] = process.argv.slice(2);
const print = (value) => console.log(JSON.stringify(value));

function raw(onOpen) {
  const started = Date.now();
  const socket = new WebSocket(url, "graphql-transport-ws");
  socket.on("open", () => onOpen(socket));
  socket.on("close", (code, reason) => {
    print({ close: code, reason: reason.toString(), seconds: (Date.now() - started) / 1000 });
  });
  socket.on("error", (error) => print({ error: String(error) }));
}

if (command === "subscribe" || command === "drop") {
  const [query, variables, count] = rest;
  let socket;
  const client = createClient({
    url,
    webSocketImpl: class extends WebSocket {
      constructor(...args) {
        super(...args);
        socket = this;
      }
    },
    retryAttempts: 0,
  });
  let seen = 0;
  await new Promise((resolve) => {
    client.subscribe(
      { query, variables: JSON.parse(variables || "{}") },
      {
        next: (result) => {
          print({ next: result });
          seen += 1;
          if (command === "drop") {
            socket.terminate();
            resolve();
          } else if (seen >= Number(count)) {
            resolve();
          }
        },
        error: (error) => {
          print({ error: Array.isArray(error) ? error : String(error.code ?? error) });
          resolve();
        },
        complete: () => {
          print({ complete: true });
          resolve();
        },
      },
    );
    print({ subscribed: true });
  });
  await client.dispose();
} else if (command === "silent") {
  raw(() => {});
} else if (command === "big") {
  raw((socket) => {
    socket.send(JSON.stringify({ type: "connection_init" }));
    socket.send(JSON.stringify({ type: "ping", payload: { pad: "x".repeat(Number(rest[0])) } }));
  });
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
