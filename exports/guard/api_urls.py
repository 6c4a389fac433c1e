"""Guard API routes, mounted under /api/ (config/urls.py)."""
from django.urls import path

from exports.guard import api

urlpatterns = [
    path("projects/<slug:slug>/guards/", api.GuardListApi.as_view(), name="api-guards"),
    path("projects/<slug:slug>/guards/<int:pk>/", api.GuardDetailApi.as_view(), name="api-guard-detail"),
    path("projects/<slug:slug>/guards/<int:pk>/promote/", api.GuardPromoteApi.as_view(), name="api-guard-promote"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluate/", api.GuardEvaluateApi.as_view(), name="api-guard-evaluate"),
    path("projects/<slug:slug>/guards/<int:pk>/retrain/", api.GuardRetrainApi.as_view(), name="api-guard-retrain"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluations/", api.GuardEvaluationsApi.as_view(), name="api-guard-evaluations"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluation-jobs/", api.GuardEvaluationJobsApi.as_view(),
         name="api-guard-evaluation-jobs"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluation-jobs/<int:job>/cancel/", api.GuardEvaluationJobCancelApi.as_view(),
         name="api-guard-evaluation-cancel"),
]
