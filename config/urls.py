"""URL map. Each app owns its own page and API url modules; this file only mounts them."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotation.api_urls")),
    path("api/", include("jury.api_urls")),
    path("api/", include("jury.edits.api_urls")),
    path("api/", include("exports.api_urls")),
    path("api/", include("exports.guard.api_urls")),
    path("", include("jury.urls")),
    path("", include("jury.edits.urls")),
    path("", include("exports.urls")),
    path("", include("exports.guard.urls")),
    path("", include("annotation.workbench.urls")),
    path("", include("annotation.urls")),
]

# Under /api/ an unknown URL or an error outside a DRF view is JSON with a code, like every API error.
handler404 = "annotation.api_errors.handler404"
handler500 = "annotation.api_errors.handler500"
