"""Pages of the core app: login/logout, dashboard, project page, imports."""
from django.contrib.auth import views as auth_views
from django.urls import path

from annotation import auth, views, views_metrics, views_projects

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("", views.dashboard, name="dashboard"),
    path("projects/new/", views_projects.project_new, name="project-new"),
    path("projects/<slug:slug>/", views.project_detail, name="project"),
    path("projects/<slug:slug>/members/", views_projects.project_members, name="project-members"),
    path("projects/<slug:slug>/members/<int:user_id>/", views_projects.project_member_update, name="project-member-update"),
    path("projects/<slug:slug>/metrics/", views_metrics.project_metrics_page, name="project-metrics"),
    path("projects/<slug:slug>/import/", views.import_upload, name="import-upload"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.import_batch, name="import-batch"),
]
