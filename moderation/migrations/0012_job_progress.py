from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('moderation', '0011_frame_text_boxes'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='progress',
            field=models.JSONField(blank=True, default=dict, verbose_name='progress'),
        ),
    ]
