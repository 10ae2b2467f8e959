// graphql-codegen configuration: typed documents for examples/queries/*.graphql.
// GQL_HISTORY_SCHEMA overrides the schema file (the tests pass a fresh export).
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: process.env.GQL_HISTORY_SCHEMA ?? "../../../schema.graphql",
  documents: ["../../queries/*.graphql"],
  ignoreNoDocuments: false,
  generates: {
    "./generated/": {
      preset: "client",
      presetConfig: {
        fragmentMasking: false,
        // persisted-documents.json: each operation by its SHA-256 hash, the
        // manifest `gql-history serve --persisted-documents` allows
        persistedDocuments: { hashAlgorithm: "sha256" },
      },
      config: {
        documentMode: "string",
        enumsAsTypes: true,
        strictScalars: true,
        useTypeImports: true,
        emitLegacyCommonJSImports: false,
        scalars: {
          DateTime: "string",
          JSON: "Record<string, unknown>",
        },
      },
    },
  },
};

export default config;
