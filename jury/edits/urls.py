from django.urls import path

from jury.edits import views

urlpatterns = [
    path("projects/<slug:slug>/edits/", views.run_list, name="edit-runs"),
    path("projects/<slug:slug>/edits/templates/", views.template_revise, name="edit-template-revise"),
    path("projects/<slug:slug>/edits/runs/<int:pk>/", views.run_detail, name="edit-run"),
    path("projects/<slug:slug>/edits/runs/<int:pk>/cancel/", views.run_cancel, name="edit-run-cancel"),
]
