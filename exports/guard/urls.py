"""Guard pages, mounted at the site root (config/urls.py)."""
from django.urls import path

from exports.guard import views

urlpatterns = [
    path("projects/<slug:slug>/guards/", views.guard_list, name="guards"),
    path("projects/<slug:slug>/guards/<int:pk>/", views.guard_detail, name="guard-detail"),
    # before guard-action: "evaluations" would otherwise be taken for an action name
    path("projects/<slug:slug>/guards/<int:pk>/evaluations/", views.guard_evaluations, name="guard-evaluations"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluations/<path:data>/", views.guard_evaluation, name="guard-evaluation"),
    path("projects/<slug:slug>/guards/<int:pk>/evaluation-jobs/<int:job>/cancel/", views.guard_evaluation_cancel,
         name="guard-evaluation-cancel"),
    path("projects/<slug:slug>/guards/<int:pk>/<str:action>/", views.guard_action, name="guard-action"),
]
