// Swagger UI plugins, sent to the browser as source text (@fastify/swagger-ui serializes the
// functions of uiConfig with toString): each must be self-contained, closing over nothing.

/** The page's Swagger UI bundle, a global of /docs. */
declare const SwaggerUIBundle: { plugins: { DownloadUrl: (system: unknown) => { fn?: Record<string, unknown> } } };

type SampleSystem = {
  getSystem: () => {
    fn: { jsonSchema202012: { memoizedSampleFromSchema: (schema: unknown, config: unknown, example: unknown) => unknown } };
  };
};

/** The plugin @fastify/swagger-ui loads by default, kept: uiConfig.plugins replaces the list. */
export function downloadUrlPlugin(system: unknown) {
  return SwaggerUIBundle.plugins.DownloadUrl(system);
}

/**
 * Swagger UI writes a string example of any media type containing "json" as a JSON string, in
 * quotes, and "Try it out" would send it so. NDJSON is lines of JSON, not JSON: its examples go
 * into the editor as they are. Otherwise the same as Swagger UI's own sample (JSON Schema 2020-12).
 */
export function ndjsonExamplesPlugin({ getSystem }: SampleSystem) {
  return {
    fn: {
      jsonSchema202012: {
        getJsonSampleSchema(schema: unknown, config: unknown, contentType: string | undefined, example: unknown) {
          const sample = getSystem().fn.jsonSchema202012.memoizedSampleFromSchema(schema, config, example);
          const type = contentType ?? '';
          const quote = typeof sample === 'object' || (typeof sample === 'string' && /json/.test(type) && !/ndjson/.test(type));
          return quote ? JSON.stringify(sample, null, 2) : sample;
        },
      },
    },
  };
}
