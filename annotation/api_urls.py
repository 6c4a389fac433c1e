"""API routes of the core app, mounted under /api/ (see config/urls.py)."""
from django.conf import settings
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny, IsAuthenticated

from annotation import api

# API_DOCS_REQUIRE_LOGIN: the schema and its docs page for logged-in users only.
_DOCS = [IsAuthenticated] if settings.API_DOCS_REQUIRE_LOGIN else [AllowAny]

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=_DOCS), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema", permission_classes=_DOCS), name="api-docs"),
    path("auth/token/", api.TokenObtainApi.as_view(), name="api-token"),
    path("auth/tokens/", api.TokenListApi.as_view(), name="api-tokens"),
    path("auth/tokens/<str:token_id>/", api.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("auth/logout/", api.TokenLogoutApi.as_view(), name="api-token-logout"),
    path("projects/", api.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", api.ProjectDetailApi.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/items/", api.ItemListApi.as_view(), name="api-items"),
    path("projects/<slug:slug>/items/<int:pk>/", api.ItemDetailApi.as_view(), name="api-item-detail"),
    path("projects/<slug:slug>/imports/", api.ImportListApi.as_view(), name="api-imports"),
    path("projects/<slug:slug>/imports/<int:pk>/", api.ImportDetailApi.as_view(), name="api-import-detail"),
    path("projects/<slug:slug>/metrics/", api.ProjectMetricsApi.as_view(), name="api-project-metrics"),
    path("taxonomies/", api.TaxonomyListApi.as_view(), name="api-taxonomies"),
    path(
        "taxonomies/<str:slug>/versions/<int:number>/",
        api.TaxonomyVersionDetailApi.as_view(),
        name="api-taxonomy-version",
    ),
    path("principle-sets/", api.PrincipleSetListApi.as_view(), name="api-principle-sets"),
]
