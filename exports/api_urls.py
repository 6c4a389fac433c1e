"""Export API routes, mounted under /api/ (config/urls.py)."""
from django.urls import path

from exports import api

urlpatterns = [
    path("projects/<slug:slug>/exports/", api.ExportListApi.as_view(), name="api-exports"),
    path("projects/<slug:slug>/exports/<int:pk>/", api.ExportDetailApi.as_view(), name="api-export-detail"),
    path(
        "projects/<slug:slug>/exports/<int:pk>/files/<path:name>",
        api.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
]
