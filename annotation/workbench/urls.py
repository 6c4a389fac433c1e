"""Workbench pages under /annotate/<slug>/ and its API under /api/annotate/<slug>/."""
from django.urls import path

from annotation.workbench import api, views, views_flags

urlpatterns = [
    path("annotate/<slug:slug>/", views.workbench, name="workbench"),
    path("annotate/<slug:slug>/submit/", views.workbench_submit, name="workbench-submit"),
    path("annotate/<slug:slug>/skip/", views.workbench_skip, name="workbench-skip"),
    path("annotate/<slug:slug>/undo/", views.workbench_undo, name="workbench-undo"),
    path("annotate/<slug:slug>/adjudicate/", views.adjudication_list, name="adjudication"),
    path("annotate/<slug:slug>/flags/", views_flags.flag_list, name="flags"),
    path("annotate/<slug:slug>/adjudicate/<int:item_id>/", views.adjudication_item, name="adjudication-item"),
    path("api/annotate/<slug:slug>/next/", api.NextItemApi.as_view(), name="api-annotate-next"),
    path("api/annotate/<slug:slug>/submit/", api.AnnotationSubmitApi.as_view(), name="api-annotate-submit"),
    path("api/annotate/<slug:slug>/skip/", api.AssignmentSkipApi.as_view(), name="api-annotate-skip"),
    path("api/annotate/<slug:slug>/flag/", api.AssignmentFlagApi.as_view(), name="api-annotate-flag"),
    path("api/annotate/<slug:slug>/undo/", api.AnnotationUndoApi.as_view(), name="api-annotate-undo"),
    path("api/annotate/<slug:slug>/adjudication/", api.AdjudicationListApi.as_view(), name="api-adjudication"),
    path(
        "api/annotate/<slug:slug>/adjudication/<int:item_id>/",
        api.AdjudicationRecordApi.as_view(),
        name="api-adjudication-record",
    ),
]
