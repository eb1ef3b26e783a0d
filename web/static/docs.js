"use strict";
// FastAPI's own /docs starts swagger-ui from an inline script, which the pages' CSP refuses: the same
// options as FastAPI's, from this file. No validator: it would send our schema to validator.swagger.io.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
