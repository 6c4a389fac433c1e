"""URL map. Each app owns its own page and API url modules; this file only mounts them."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotation.api_urls")),
    path("api/", include("jury.api_urls")),
    path("api/", include("exports.api_urls")),
    path("", include("jury.urls")),
    path("", include("exports.urls")),
    path("", include("annotation.workbench.urls")),
    path("", include("annotation.urls")),
]
