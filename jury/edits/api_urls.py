from django.urls import path

from jury.edits import api

urlpatterns = [
    path("projects/<slug:slug>/edits/runs/", api.EditRunListApi.as_view(), name="api-edit-runs"),
    path("projects/<slug:slug>/edits/runs/<int:pk>/", api.EditRunDetailApi.as_view(), name="api-edit-run"),
    path("projects/<slug:slug>/edits/runs/<int:pk>/cancel/", api.EditRunCancelApi.as_view(), name="api-edit-run-cancel"),
    path("projects/<slug:slug>/edits/templates/", api.EditTemplateListApi.as_view(), name="api-edit-templates"),
]
