"""Jury API routes, mounted under /api/ (config/urls.py)."""
from django.urls import path

from jury import api

urlpatterns = [
    path("jury/jurors/", api.JurorListApi.as_view(), name="api-jury-jurors"),
    path("jury/juries/", api.JuryListApi.as_view(), name="api-jury-juries"),
    path("projects/<slug:slug>/jury/runs/", api.RunListApi.as_view(), name="api-jury-runs"),
    path("projects/<slug:slug>/jury/runs/<int:pk>/", api.RunDetailApi.as_view(), name="api-jury-run"),
    path("projects/<slug:slug>/jury/runs/<int:pk>/cancel/", api.RunCancelApi.as_view(), name="api-jury-run-cancel"),
    path("projects/<slug:slug>/jury/items/<int:pk>/verdicts/", api.ItemVerdictsApi.as_view(), name="api-jury-item-verdicts"),
]
