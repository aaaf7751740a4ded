// Starts Swagger UI on /docs. A file of ours, not an inline script, so the page keeps the
// Content-Security-Policy that forbids inline scripts; the OpenAPI URL comes from the
// page (data-openapi-url), the bundle from the Python package fastapi-offline.
"use strict";
window.addEventListener("load", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: element.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
